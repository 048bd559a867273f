"""(flows, rules) -> purpose, verdict and reason per flow. Pure: no I/O, no packets.

Verdicts and reasons (first match wins, in this order):

- ``blocked`` — ``icmp_unreachable`` (an ICMP/ICMPv6 destination-unreachable quotes the flow and
  the responder never answered; a port unreachable carrying a cloud server's own address, not a
  local one, is told as most likely forged by a firewall on the path:
  :func:`.unreachable.answered_by`), ``rejected`` (the SYN was answered by a RST: conn_state REJ),
  ``no_answer`` (SYN and retransmissions met silence: S0, SH, RSTOS0; or a UDP request to a
  request/response service with no reply; or, in a capture started mid-connection, data the
  originator sent again and again with nothing back: :func:`_partial_silence`), ``tls_failed`` (the TLS handshake was aborted by
  either side — alert, FIN or RST — before it completed; where the bytes inspected stop before
  the data did, ``payload_cut``, ``tls_established`` also holds when the packets show the
  handshake went on: ``inspect._went_on``), or a ClientHello was sent again and the server
  acknowledged nothing after its SYN-ACK (dropped on its way, whatever the duration), or no
  server byte came for :data:`TLS_SILENCE_S` after the ClientHello or, once the server answered
  it (a TLS 1.2 first flight, a HelloRetryRequest), after the client's next flight (internal
  columns ``tls_wait_from_s``/``tls_wait_after``: ``inspect._tls_waits``); the flow lasting that
  long, or the capture going on (``quiet_s``); on a connection closed after such a silence, the
  detail keeps it with who closed (internal columns ``tls_close``/``tls_close_wait_s``:
  ``inspect._close_waits``, :func:`_silent_close`); closed sooner without an alert, the detail says
  who closed first and after what (:func:`_who_closed`); also the client's certificate alert
  after a public CA's certificate for the name asked (:func:`public_ca`: the agent's root
  certificates or clock, :func:`_untrusted_public`, not a proxy), and any certificate alert in
  TLS 1.3, whose certificate is encrypted (:data:`TLS13_HIDDEN`: a proxy's or the server's own
  cannot be told); and a certificate for another name than the one asked, issued by no
  TLS-inspection product's CA, that the client refused (:func:`other_server_text`: another server
  answered, not an inspecting proxy, which keeps the name). ``tls_intercepted`` (below) whose
  handshake was aborted (:func:`_interception`: the client refused the inspecting proxy's
  certificate) is ``blocked`` too: the agent cannot connect. ``wrong_source``: a UDP DNS query
  nothing answered whose answer came from another address than the one asked (a multihomed
  resolver, a DNS redirect/NAT that does not rewrite the source: the client drops it; the one
  judgement but the 407's and the NODATA's that reads other rows, :func:`_note_other_source`);
  that answer's own flow is ``unclassified``/``wrong_source``, not an answered lookup.
- ``unexpected`` — ``tls_intercepted`` (the server certificate, visible up to TLS 1.2, is not for
  the name asked; or the client rejected the certificate, seen (up to TLS 1.2), with a cleartext alert
  bad_certificate, unsupported_certificate, certificate_unknown or unknown_ca: a TLS-inspecting
  proxy with a certificate for the right name from a CA the client does not trust; or its
  issuer is the CA of a TLS-inspection product, :data:`INSPECTION_CAS`: one that keeps the names;
  the handshake completed: the client accepted it; also for TLS seen on TCP 1443, KSN),
  ``not_tls`` (cleartext where the rule documents TLS/HTTPS; a ClientHello answered in HTTP, its
  status quoted; ``blocked``/``rejected`` instead when that status is a filter's refusal or a
  failing gateway's, :data:`FILTER_STATUSES`, or a redirect, :data:`REDIRECT_STATUSES`, its
  ``Location`` named: a captive portal or web filter; the client's own cleartext quoted,
  :func:`_client_cleartext`),
  ``host_mismatch`` (a known name outside the rule's host mask; a distribution point's port whose
  server the client asked for by a cloud Administration Server name, not at a local address:
  :data:`ONPREM_PORT`; whatever happened to it: when the connection itself failed, as it would be
  ``blocked`` under the mask, the detail adds :data:`MISMATCH_FAILED` and how), ``wrong_direction``
  (the documented port was on the side that opened the connection, towards a port that is not a
  well-known one, >= 1024; or a cloud server's port other than a well-known one on a local address,
  the connection opened from an address that is not local: :func:`_inbound`, detail
  :data:`INBOUND`), ``undocumented_port`` (a name
  under kaspersky.com on a port no rule documents).
- ``ok`` — a documented purpose that worked; a one-way UDP broadcast/multicast or inbound
  datagram is normal. An answered DNS query is ``ok`` (the server was reached); an error answer
  (``dns_rcode`` other than NOERROR, e.g. NXDOMAIN, REFUSED) or a sinkhole address is told in
  ``detail``: ``DNS answer NXDOMAIN for <query>``; for a name the agent needs (under a rule's
  host mask or kaspersky.com, :func:`_agent_name`) such an answer is ``blocked``/``rejected``
  instead when no response of the flow gave a usable address (:func:`usable_address`): the
  agent cannot connect. So is a NOERROR answer with no address (NODATA) for such a name when no
  lookup of it in the capture got one (detail :data:`DNS_NO_ADDRESS`; a DNS judgement that
  reads other rows: :func:`_note_resolved`). A failed lookup (``blocked``: an error answer, no
  answer, an ICMP error) that a lookup of the same name by the same client made good within
  :data:`DNS_RETRY_S` (a retry, or Windows' copy of the question to another server) is ``ok``,
  its detail saying so (:func:`_note_dns_retries`).
- ``unclassified`` — no rule covers the flow; or it is not judged: a partial TCP flow the
  responder sent nothing in, too short or without data to call blocked (:func:`_partial_silence`:
  it keeps its purpose but never verifies it), QUIC to UDP 443 of a Kaspersky name
  (:data:`QUIC_DETAIL`: a browser's HTTP/3, not a documented purpose), a TCP flow whose every
  TCP header the snaplen cut (internal column ``tcp_hdr_cut``; :data:`HDR_CUT_DETAIL`: no flags,
  sequence numbers or lengths seen), a TCP or UDP flow none of whose packets kept its transport
  header (ports -1; :data:`NO_PORTS_DETAIL`); a TCP flow captured in one direction only, the
  originator's packets acknowledging the responder's SYN-ACK (and data) none of which was
  captured (reason ``one_way``, :func:`_one_way`: the server answered, what it said is not in
  the capture; the checklist's "seen one-way"); a probe of a port or address scan (reason
  ``port_scan``/``address_scan``, purpose '': :mod:`kscc_traffic.scans`, :func:`_note_scans`: not
  KSC traffic, whatever its port).

An HTTP ``CONNECT`` through an explicit proxy (``proxy_target``) is judged by its target: the
rule of the target port, the host mask on the target host; the proxy's answer (``http_status``)
other than 2xx, or the proxy closing/resetting before any answer, is ``blocked``/``rejected``, no
answer for :data:`TLS_SILENCE_S` ``blocked``/``no_answer``; after a 2xx the TLS inside the tunnel
is judged as a direct connection's (see :func:`_proxy_refusal`). The one judgement that reads
other rows: a ``407`` whose client then got the same target through the same proxy on another
connection begun at most :data:`AUTH_RETRY_S` after it ended is ``ok``, an authentication round
(:func:`proxy_auth_retries`, :data:`PROXY_AUTH_ROUND`), as a 407 answered on the same connection is.

A TCP flow whose start was not captured (``partial``) is judged on what was seen: it cannot be
``rejected``, nor ``no_answer`` unless the responder sent nothing at all while the originator's
data went on for :data:`TLS_SILENCE_S` (:func:`_partial_silence`), and ``partial`` is added to its
reason (``partial`` alone when ok or not judged).

A TCP connection whose SYN was answered by a SYN-ACK and then reset before any data
(:func:`_handshake_end`) is not a SYN answered by a reset, even where Zeek says REJ (both sides
reset, nothing sent): the responder's reset first is ``blocked``/``rejected`` (detail
:data:`HANDSHAKE_RESET`: something accepts connections with no server behind it), the
originator's first is ``ok`` (a port probe: :func:`_reset_handshake`). The responder's FIN right
after the handshake, before the client sent a byte (within :data:`TLS_SILENCE_S`), is
``blocked``/``rejected`` on a TLS purpose (:data:`HANDSHAKE_CLOSE`: its ClientHello never went
out), ``ok`` with that detail on another (:func:`_closed_handshake`). A TCP flow to a broadcast or
multicast address (``cast``) that nothing answered is ``unexpected``/``not_unicast``
(:func:`group_tcp_detail`: no TCP connection can be made to one, RFC 1122 §4.2.3.10; the address
the sender uses is wrong, not a firewall).

Plain HTTP sent straight to a port a rule documents for HTTP (``cert_check``: no proxy, no
``proxy_target``) is judged on its answer as a request in absolute-form to a proxy is: a
filter's refusal or a failing gateway (:data:`FILTER_STATUSES`: 403, 407, 451, 511, 502, 503,
504; a transparent web filter's 403) is ``blocked``/``rejected`` (another answer, 404 or 500,
comes from the server reached: ``ok``), the server closing or resetting
before any answer ``rejected``, no answer for :data:`TLS_SILENCE_S` ``no_answer`` (see
:func:`_proxy_answer`); a 2xx or 3xx is ``ok`` (the ``Location`` of a redirect is not read).

Through a proxy the host mask is checked on the CONNECT host and on the SNI asked inside the tunnel
(the detail says which one is outside). A plain request sent to the proxy in absolute-form
(``GET http://crl3.digicert.com/x.crl``: ``proxy_target`` ``http://crl3.digicert.com:80``) is
judged as a CONNECT to the URI's host and port (the mask on the URI host), except that it opens no
tunnel: the proxy's answer is the outcome, a 2xx or 3xx (the target's answer, passed on) is
judged as the same HTTP sent directly, a 4xx/5xx is ``blocked``/``rejected`` (see
:func:`_proxy_answer`).
"""
from __future__ import annotations

import bisect
import functools
import ipaddress
import math
import re
import urllib.parse
from typing import Callable, Mapping, NamedTuple

import numpy as np
import pandas as pd

from .addresses import endpoint_text, nat64_text
from .flows import RESP_TTL, RESP_TTL_OUT, arrays_of, history_core, history_plain, repeated, vlan_key
from .streams import MAX_BYTES, MAX_SEGMENTS
from .inspect import (_ENCRYPTED_ALERT as ENCRYPTED_ALERT, CERT_DATED_AFTER, CERT_DATED_BEFORE, CERT_DATED_WITHIN,
                      DNS_ASKED_A, DNS_ASKED_AAAA, DNS_CUT, DNS_KEYS,
                      DNS_TRUNCATED, DNS_UNREADABLE, HELLO_PQ, asked_has, truncated_answer,
                      HELLO_UNACKED, REFUSED_NEARER, _hops, REFUSED_OTHER, REFUSED_OWN, REFUSED_OWN_MEANS, REFUSED_OWN_MEANS_V6, REFUSED_PORT,
                      SMALLEST_SEALED, SYNACK_IN_PLACE,
                      CLIENT_CERT_NONE, CLIENT_CERT_SENT, CLIENT_CERT_UNSEEN, OFFER_CURRENT, OFFER_NARROW,
                      _qtype_text, split_cert_names, split_dns_key, tls_record_cut_parse)
from .names import _copy, _labels_back, is_ip_literal
from .protocols.http import FILTER_STATUSES, PROXY_SCHEMES, split_host_port
from .protocols.tls import is_host_name, name_matches, under_mask
from .rules import RuleSet
from .unreachable import answered_by, delivery_error, mtu_hint, reassembly_note, too_big_note, traceroute_probe, what_it_means

try:
    from . import _textcodes
except ImportError:     # (not built: _str_codes_py, the same codes)
    _textcodes = None

CLASS_COLUMNS: dict[str, tuple[str, str, str]] = {
    "purpose": ("object", "", "rule id of the documented purpose, 'dns', or '' (none)"),
    "verdict": ("object", "", "ok, blocked, unexpected or unclassified"),
    "reason": ("object", "", "why: no_answer, rejected, icmp_unreachable, tls_failed, tls_intercepted, not_tls, host_mismatch, wrong_direction, undocumented_port, not_unicast; one_way (unclassified: only one direction captured); port_scan, address_scan (unclassified: a scanner's probe, not KSC traffic); wrong_source (a DNS query answered only from another address than asked, blocked; that answer's own flow unclassified); 'partial' added when the start was not captured"),
    "detail": ("object", "", "one sentence for a human: what was seen"),
}

VENDOR_DOMAIN = "kaspersky.com"
#: the ``opener`` of the rules whose server is Kaspersky's cloud (§A)
CLOUD_OPENER = "client_to_cloud"
_NO_ANSWER_STATES = {"S0", "SH", "RSTOS0"}
#: ports below this are well-known services (IANA): a connection to one is never "the server
#: connecting back" (wrong_direction), whatever its source port
WELL_KNOWN_PORTS = 1024
#: TLS alerts by which a client rejects the server's certificate (RFC 8446 §6.2: bad_certificate,
#: unsupported_certificate, certificate_unknown, unknown_ca): after a certificate for the name
#: asked, the sign of a TLS-inspecting proxy whose CA the agent does not trust
_CERT_REJECTED = (" (42)", " (43)", " (46)", " (48)")
#: a ClientHello (or a CONNECT) with no server byte for this long (s) is blocked: until the
#: flow's last packet, or with the capture going on after it (``quiet_s``)
TLS_SILENCE_S = 3.0
_CLOSED_STATES = {"SF", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "REJ"}


def _under_domain(name: str, domain: str) -> bool:
    n = name.lower().rstrip(".")
    return n == domain or n.endswith("." + domain)


#: ``dns_rcode`` values that are no error (no response seen, or NOERROR)
DNS_NO_ERROR = ("", "NOERROR")


def sinkhole_address(answers: str) -> str:
    """The first address of a ``dns_answers`` text that is how DNS filters and hosts-file style
    blockers answer for a name they block: 0.0.0.0, ::, ::ffff:0.0.0.0 (nothing to connect to) or
    127.0.0.1, ::1 (this very host); '' when there is none. Other 127.x answers are left alone
    (a DNS blocklist's 127.0.0.2 is an answer, not a block)."""
    if not answers:
        return ""
    for a in answers.split(";"):
        if a in _SINKHOLES:
            return a
    return ""


def usable_address(answers: str) -> bool:
    """Does a ``dns_answers`` text hold an address to connect to (one that is not a sinkhole,
    :func:`sinkhole_address`)? A flow whose other query resolved got one despite an error answer."""
    return any(a and a not in _SINKHOLES for a in answers.split(";")) if answers else False


#: dns_answers addresses that mean "blocked" (as the address text is written: ipaddress formatting)
_SINKHOLES = frozenset({"0.0.0.0", "::", "::ffff:0.0.0.0", "::ffff:0:0", "127.0.0.1", "::1",
                        "::ffff:127.0.0.1", "::ffff:7f00:1"})


def _dns_error_detail(row: dict) -> str:
    """The ``detail`` of an answered DNS flow: ``DNS answer <rcode> for <query>`` when one of its
    responses carried an error code (``dns_rcode`` not in :data:`DNS_NO_ERROR`); else ``DNS
    answer 0.0.0.0 for <query>: ...`` when one answered a sinkhole address (any address of
    ``dns_answers``, :func:`sinkhole_address`);
    else ''. Reads ``dns_rcode``, ``dns_answers`` and ``query`` ('' when the table has no such
    column)."""
    rcode = row.get("dns_rcode") or ""
    query = row.get("query") or ""
    if rcode in DNS_NO_ERROR:
        hole = sinkhole_address(row.get("dns_answers") or "")
        if not hole:
            return ""
        return (f"DNS answer {hole} for {query or '(no question)'}: a sinkhole address (nowhere, or the "
                "client itself), as a DNS filter answers for a name it blocks")
    return f"DNS answer {rcode} for {query}" if query else f"DNS answer {rcode}"


#: how the detail of a ClientHello refused in HTTP by a filter (a 403…) starts: the TCP port is
#: open, something in the path refused the TLS (report.readiness advises as for ``tls_failed``)
FILTER_ANSWER = "the server answered HTTP "
#: what the detail of a ClientHello answered by an HTTP 2xx page says it is
PAGE_ANSWER = ("a page served in the server's place (a web filter's block page or a captive portal: a web server "
               "answers a ClientHello with an error, not a page)")
#: what a detail calls the client's first bytes answered in HTTP when they start like a TLS
#: record (0x16 0x03 …) but no ClientHello could be read from them (service not ssl)
NO_HELLO = "the client's TLS-looking bytes"

#: how the detail of a DNS query whose every response matched none of its queries starts (reason
#: ``no_answer``), the internal ``dns_mismatch`` text after it
#: (:func:`.inspect.dns_mismatch_text`: what mismatched, the transaction ID or the question)
DNS_NOT_ACCEPTED = "DNS query without an answer the client accepts: "

#: what the detail of a blocked DNS flow answered with an error for a name the agent needs ends
#: with, in parentheses, by its ``dns_rcode`` (as the report's advice, report.dns_refused_fix and
#: dns_servfail_fix: REFUSED is the resolver refusing this client, SERVFAIL its upstream failing);
#: :data:`DNS_ERROR_FIX` for the others (NXDOMAIN…, a sinkhole address)
DNS_RCODE_FIX = {"REFUSED": "the resolver refuses recursion for this client: set the client to a resolver that "
                            "serves it, or allow it on this one",
                 "SERVFAIL": "the resolver failed upstream, it got no answer from the servers it asks: let the "
                             "resolver's own lookups out (UDP and TCP 53) and check its forwarders"}
DNS_ERROR_FIX = "fix the resolver or the DNS filter"

#: the detail of a DNS over TCP query whose SYN was answered by a reset (``rejected``; the other
#: ``rejected`` DNS flows got an error or sinkhole answer for a name the agent needs)
DNS_TCP_RESET = "DNS over TCP rejected with RST"

#: how the detail of a SYN answered by a packet that does not acknowledge it starts (an old
#: connection's state on the server, a firewall or a NAT: ``syn_answer``)
STALE_ANSWER = "no connection was made: the SYN was answered "


#: the detail's end of a DNS flow asked over IPv6 whose only error answers were to AAAA questions
#: for a name the agent needs (break-it 25 F10: on an IPv6-only network, DNS64 failing, the agent
#: had no address to use and the run said nothing was wrong); asked over IPv4 it stays ``ok``
AAAA_OVER_IPV6 = ("its AAAA (IPv6 address) query, asked over IPv6; the agent needs this name: a host "
                  "without IPv4 (an IPv6-only network) cannot use the A answer and cannot connect. The "
                  "name needs an AAAA record, or the resolver's DNS64 (with a NAT64 gateway) to synthesise "
                  "one: fix the resolver (a dual-stack host connects over IPv4 with the A answer)")
#: what the detail of a DNS flow whose only error answers were to AAAA questions says after
#: ``DNS answer <rcode> for <query>: `` when it stays ``ok`` (asked over IPv4, or its A question
#: answered with an address: an agent connects over IPv4 with it); report.dns_errors says so
AAAA_ONLY = "only its AAAA (IPv6 address) query"
#: ... and then, when the A answer came in the same flow (one socket asking both: glibc's
#: resolver; break-it s57 #11, the detail said only "DNS answer REFUSED for …")
A_ANSWERED_HERE = "its A (IPv4 address) query was answered in this flow"
#: how the detail of a DNS flow starts whose answers, NOERROR, held no address (NODATA) for a name
#: the agent needs, when no lookup of that name in the capture got one (newcomer 28 F2: an
#: IPv6-only agent asking AAAA, a resolver with no A record for it; :func:`_note_resolved`)
DNS_NO_ADDRESS = "DNS answer NOERROR with no address for "
#: the internal column a chunked reading fills for such a flow held back to the capture's end
#: (:class:`kscc_traffic.chunked._NoAddress`): True when another lookup of its name got an address
DNS_RESOLVED = "dns_resolved"


def no_address_counts(asked, over_v6: bool) -> bool:
    """Does a DNS flow answered NOERROR with no address (NODATA) tell that its name has no address
    the agent can use? ``asked``: the flow's ``dns_asked`` (:data:`~kscc_traffic.inspect.DNS_ASKED_A`
    / :data:`~kscc_traffic.inspect.DNS_ASKED_AAAA` bits of the questions its responses answered;
    None or '' when the table has no such column: not known, taken as an address question);
    ``over_v6``: asked over IPv6. Yes for an A question; for an AAAA one only asked over IPv6 (an
    agent that may have no IPv4: over IPv4 the A record it did not ask for here is what it
    connects with, and most names have no AAAA); no for any other question (HTTPS, SVCB, TXT…:
    no address was asked for)."""
    if isinstance(asked, (bool, np.bool_)) or not isinstance(asked, (int, np.integer)):
        return True
    return bool(asked & DNS_ASKED_A) or (bool(asked & DNS_ASKED_AAAA) and over_v6)


def no_address_detail(query: str, over_v6: bool, asked=None) -> str:
    """The detail of a DNS flow answered NOERROR with no address for ``query``, a name the agent
    needs (:data:`DNS_NO_ADDRESS`); ``over_v6``: asked over IPv6 (the agent may have no IPv4);
    ``asked``: its ``dns_asked`` bits (:func:`no_address_counts`), which say the records named
    (A, AAAA, or both when not known), and with :data:`~kscc_traffic.inspect.DNS_UNREADABLE` that
    a response held records whose names could not be read (a malformed answer, said instead)."""
    a = isinstance(asked, (int, np.integer)) and not isinstance(asked, (bool, np.bool_))
    family, records = (("IPv4/IPv6", "A or AAAA") if not a or (asked & DNS_ASKED_A and asked & DNS_ASKED_AAAA
                                                                 and over_v6)
                       else ("IPv4", "A") if asked & DNS_ASKED_A else ("IPv6", "AAAA"))
    if a and asked & DNS_UNREADABLE:
        # (records dropped because a name in them breaks the DNS rules: no statement on the
        # server's records can be made; the answer itself is broken, break-it 32 F2)
        return (f"{DNS_NO_ADDRESS}{query}: no lookup of it in the capture got an address: the answer is "
                "malformed, records in it could not be read (a name breaking the DNS rules: a compression pointer "
                "that loops or points forward, a reserved label type; or a record running past the message's end), "
                "and a resolver drops such an answer (a broken DNS server, or a device on the path rewriting DNS "
                "answers); the agent "
                "needs this name: without its address it cannot connect (fix the resolver or the DNS filter"
                + ("; an IPv6-only agent needs an AAAA record, or the resolver's DNS64 with a NAT64 gateway" if over_v6
                   else "") + ")")
    return (f"{DNS_NO_ADDRESS}{query}: no lookup of it in the capture got an address (the DNS server gives no "
            f"{family} address for it: no {records} record, as it answers); the agent needs this name: without "
            "its address it cannot connect (fix the resolver or the DNS filter"
            + ("; an IPv6-only agent needs an AAAA record, or the resolver's DNS64 with a NAT64 gateway" if over_v6
               else "") + ")")


def truncated_detail(query: str) -> str:
    """The detail of a UDP DNS flow (reason ``dns_truncated``) whose answer for ``query``, a name
    the agent needs, was truncated (TC flag, :data:`~kscc_traffic.inspect.DNS_TRUNCATED`) with no
    address in it, when no lookup of the name in the capture got an address (no retry over TCP
    answered): starts with :data:`DNS_NO_ADDRESS`, so :func:`_note_resolved` makes it ``ok`` when
    one did."""
    return (f"{DNS_NO_ADDRESS}{query}: the answer was truncated (TC flag set: too large for UDP) and no lookup of "
            "it in the capture got an address: the client must ask again over TCP, and no such retry was answered "
            "(DNS over TCP, port 53/TCP, blocked to the resolver, or not tried); the agent needs this name: without "
            "its address it cannot connect (allow DNS over TCP, port 53/TCP, from the clients to their resolver)")


#: how the detail of a UDP DNS flow starts whose truncated answer (reason ``dns_truncated`` until
#: then) another lookup of its name made good (:func:`truncated_resolved_detail`)
DNS_TRUNCATED_UDP = "DNS answer truncated over UDP for "


def truncated_resolved_detail(query: str, over_tcp: bool) -> str:
    """The detail of a UDP DNS flow whose answer for ``query`` was truncated with no address in
    it (:func:`truncated_detail`) when a lookup of the name in the capture got an address
    (:func:`_note_resolved`: verdict ``ok``): ``over_tcp``, one over TCP (the client's retry over
    TCP, RFC 7766: DNS over TCP works); else only over UDP (no retry over TCP seen: another
    query, another resolver, or EDNS answered). ``query`` is the ``query`` column's text (escaped
    as every name read from packets)."""
    head = f"{DNS_TRUNCATED_UDP}{query} (TC flag set: too large for UDP); "
    if over_tcp:
        return head + "a lookup of it over TCP (port 53/TCP) got an address: the retry over TCP works"
    return head + "another lookup of it in the capture got an address, none over TCP (no retry over TCP seen)"


#: the internal column a chunked reading fills beside :data:`DNS_RESOLVED`: True when a lookup
#: over TCP in any batch got an address for the name (:func:`truncated_resolved_detail`)
DNS_RESOLVED_TCP = "dns_resolved_tcp"
#: ... and True when a lookup over TCP in any batch got an answer (a response, whatever it held)
#: for the name (:func:`truncated_answered_detail`)
DNS_ANSWERED_TCP = "dns_answered_tcp"
#: ... True when a lookup in any batch got a usable IPv6 address for the name, and (the same for
#: every row) True when any flow of the capture is IPv4 (:func:`_note_resolved`: an AAAA
#: question asked over IPv6 is made good by an A answer only where the capture shows IPv4)
DNS_RESOLVED6, SEEN_IPV4 = "dns_resolved6", "seen_ipv4"
#: what the detail of a DNS flow asked over IPv6 for AAAA, answered with no address, whose name
#: only A answers resolved, in a capture with no IPv4 flow, says after the query (scenario pass
#: s51 #2: :func:`v6_only_detail`)
V6_ONLY_A = "only A answers"
#: what follows the query in such a detail, up to :data:`V6_ONLY_A`
V6_ONLY_HEAD = ": no IPv6 address (no AAAA record, as the DNS server answers), "


def v6_only_detail(query: str) -> str:
    """The detail of such a flow (:data:`V6_ONLY_A`) for ``query`` (starts with
    :data:`DNS_NO_ADDRESS`, as every NODATA detail: the report advises the resolver). The A
    answers' addresses are in their own flows (a chunked reading does not carry them)."""
    return (f"{DNS_NO_ADDRESS}{query}{V6_ONLY_HEAD}{V6_ONLY_A} (IPv4 addresses), which cannot serve here: the "
            "capture shows no IPv4 traffic nor NAT64 (an IPv6-only network); the agent needs this name: it needs an "
            "AAAA record, or the resolver's DNS64 with a NAT64 gateway (fix the resolver)")


def usable_address6(answers: str) -> bool:
    """:func:`usable_address` for an IPv6 address (one an IPv6-only host connects to)."""
    return any(a and ":" in a and a not in _SINKHOLES for a in answers.split(";")) if answers else False


def _aaaa_over_v6(orig_h, asked) -> bool:
    """Whether a DNS flow asked over IPv6 (``orig_h``) for an AAAA record only (``dns_asked``
    bits; not known: no)."""
    return (":" in str(orig_h or "") and isinstance(asked, (int, np.integer))
            and not isinstance(asked, (bool, np.bool_)) and bool(asked & DNS_ASKED_AAAA)
            and not asked & DNS_ASKED_A)


def truncated_answered_detail(query: str, over_v6: bool, asked) -> str:
    """The detail of a UDP DNS flow whose answer for ``query``, a name the agent needs, was
    truncated with no address (:func:`truncated_detail`) when a lookup of the name over TCP got
    an answer and no lookup in the capture an address (:func:`_note_resolved`: ``rejected``, not
    ``dns_truncated``: DNS over TCP works, the name has no address, as that answer says):
    :func:`no_address_detail` (``over_v6``, ``asked`` as there), then that."""
    return (f"{no_address_detail(query, over_v6, asked)}; this answer over UDP was truncated (TC flag set), and a "
            "lookup of it over TCP (port 53/TCP) was answered, with no address either: DNS over TCP works")


def truncated_partial_detail(query: str) -> str:
    """The detail of a UDP DNS flow (verdict ``ok``) whose NOERROR answer for ``query``, a name
    the agent needs, was truncated (TC flag, :data:`~kscc_traffic.inspect.DNS_TRUNCATED`) and
    held some addresses (part of them: RFC 2181 §9), when no lookup of the name over TCP got an
    answer in the capture (:func:`_note_truncated_partial` clears it when one did): the agent
    may use the partial answer, but glibc and systemd-resolved clients ask again over TCP and
    fail the lookup when DNS over TCP is blocked. ``query`` is the ``query`` column's text
    (escaped as every name read from packets)."""
    return (f"{DNS_TRUNCATED_UDP}{query} (TC flag set: too large for UDP), holding part of the addresses; no "
            "retry of it over TCP (port 53/TCP) was seen answered: if DNS over TCP is blocked, glibc-based agents "
            "(and systemd-resolved) fail this lookup, as RFC 2181 §9 has them ask again over TCP; others use the "
            "partial answer")


def _truncated_partial(row: dict, rules: RuleSet) -> bool:
    """Does ``row`` (a DNS flow's columns, answered NOERROR with no sinkhole) get
    :func:`truncated_partial_detail`: UDP, a response with the TC flag (``dns_asked`` bit
    :data:`~kscc_traffic.inspect.DNS_TRUNCATED`), a usable address in ``dns_answers``, for a name
    the agent needs (``query``)?"""
    asked = row.get("dns_asked")
    return str(row.get("proto")) == "udp" and truncated_answer(asked) \
        and usable_address(row.get("dns_answers") or "") and _agent_name(row.get("query") or "", rules)


def _note_truncated_partial(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Clear (``res`` rows, in place) the detail of each ``ok`` DNS flow whose truncated answer
    held part of the addresses (:func:`truncated_partial_detail`, that exact text for its
    ``query``: compared, not parsed) when a lookup of its name over TCP got an answer: a TCP DNS
    flow of the table (same ``capture``) with a ``dns_rcode``, or its :data:`DNS_ANSWERED_TCP`
    column True (a chunked reading: seen in another batch). The retry over TCP was made and
    answered; nothing to say."""
    if "query" not in flows.columns or "proto" not in flows.columns or not len(res):
        return
    got = _columns(flows, ("query", "proto"))
    query = np.asarray(got["query"], dtype=object)
    proto = np.asarray(got["proto"], dtype=object)
    # (the details of the ok UDP rows taken at once: ``res[i, 3]`` per row costs more than the test)
    ok = np.flatnonzero((res[:, 1] == "ok") & (proto == "udp"))
    at = [i for i, d in zip(ok.tolist(), res[ok, 3].tolist())
          if str(d).startswith(DNS_TRUNCATED_UDP) and d == truncated_partial_detail(str(query[i]))]
    if not at:
        return
    cap = flows["capture"].to_numpy(dtype=object) if "capture" in flows.columns else np.full(len(flows), "", object)
    rcode = flows["dns_rcode"].to_numpy(dtype=object) if "dns_rcode" in flows.columns \
        else np.full(len(flows), "", object)
    said_tcp = {(cap[j], _name_key(query[j])) for j in np.flatnonzero(proto == "tcp").tolist()
                if isinstance(rcode[j], str) and rcode[j] and query[j]}
    told = flows[DNS_ANSWERED_TCP].to_numpy(dtype=object) if DNS_ANSWERED_TCP in flows.columns else None
    for i in at:
        if (cap[i], _name_key(query[i])) in said_tcp or \
                (told is not None and isinstance(told[i], (bool, np.bool_)) and bool(told[i])):
            res[i, 3] = ""


#: how the detail of a DNS flow whose answer could not be read starts (:func:`dns_unreadable_detail`)
DNS_UNREADABLE_ANSWER = "DNS answer unreadable for "


def unreadable_answer(asked) -> bool:
    """True when ``asked``, a flow's ``dns_asked`` bits (an int; anything else: not known, False),
    holds :data:`~kscc_traffic.inspect.DNS_UNREADABLE`: a response of the flow was malformed."""
    return asked_has(asked, DNS_UNREADABLE)


def cut_answer(asked) -> bool:
    """True when ``asked``, a flow's ``dns_asked`` bits (an int; anything else: not known, False),
    holds :data:`~kscc_traffic.inspect.DNS_CUT`: a response of the flow was cut by the capture
    before its answer records."""
    return asked_has(asked, DNS_CUT)


#: how the detail of a DNS flow whose answer the capture cut before its records starts
DNS_CUT_ANSWER = "DNS answer cut by the capture for "


def dns_cut_detail(query: str) -> str:
    """The detail of a DNS flow with no address read because the capture cut its answer before
    the answer records its header announces (:func:`cut_answer`: a snaplen such as pktmon's
    default 128 bytes) for ``query``: not known whether it held an address, so not judged as an
    answer without one (links s54 #1)."""
    return (f"{DNS_CUT_ANSWER}{query or '(no question read)'}: the bytes read of it end before the answer "
            "records its header announces (a snaplen such as pktmon's 128 bytes; over TCP also a stream longer "
            "than the 16 KiB read of it), so whether it gave an address is not known (if the snaplen cut it: "
            "capture whole packets, tcpdump -s 0, pktmon --pkt-size 0)")


def dns_unreadable_detail(query: str) -> str:
    """The detail of a DNS flow answered (NOERROR) with no address read because its answer was
    malformed (:func:`unreadable_answer`) for ``query``, a name no agent needs (one it needs:
    :func:`no_address_detail`): the answer is unreadable, not an empty NOERROR."""
    return (f"{DNS_UNREADABLE_ANSWER}{query or '(no question read)'}: the answer is malformed, records in it "
            "could not be read (a name breaking the DNS rules: a compression pointer that loops or points "
            "forward, a reserved label type; or a record running past the message's end), and a resolver "
            "drops such an answer (a broken DNS server, or a device on the path rewriting DNS answers)")


def _name_key(name) -> str:
    return str(name or "").lower().rstrip(".")


def _note_resolved(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Judge again (``res`` rows, in place) each DNS flow judged ``blocked`` for no address
    (:data:`DNS_NO_ADDRESS`) whose name another lookup in the table (same ``capture``) got a
    usable address for (:func:`usable_address`; or its :data:`DNS_RESOLVED` column True: seen in
    another batch): ``ok`` with no detail, as before (a dual-stack host's empty AAAA answer beside
    its A answer); an AAAA question asked over IPv6 only when that address is IPv6
    (:data:`DNS_RESOLVED6`) or the capture shows IPv4 reached (:data:`SEEN_IPV4`,
    :func:`~kscc_traffic.addresses.shows_ipv4`: a unicast IPv4 flow from a real address, the host
    may be dual-stack; a flow to a NAT64 address), else it stays ``blocked`` and says so (:func:`v6_only_detail`); a truncated answer (reason ``dns_truncated``) ``ok`` with the detail
    :func:`truncated_resolved_detail`, saying whether a lookup over TCP got the address (a TCP
    flow of the table, or :data:`DNS_RESOLVED_TCP` True). A truncated answer no lookup made good
    whose name a lookup over TCP got an answer for (a TCP DNS flow of the table with a
    ``dns_rcode``, or :data:`DNS_ANSWERED_TCP` True) is ``rejected`` instead
    (:func:`truncated_answered_detail`): the retry over TCP worked, the name has no address."""
    # (the blocked rows found by numpy, their details then taken at once: not two ``res[i, j]`` a row)
    blocked = np.flatnonzero(res[:, 1] == "blocked") if len(res) else np.zeros(0, np.int64)
    at = [i for i, d in zip(blocked.tolist(), res[blocked, 3].tolist()) if str(d).startswith(DNS_NO_ADDRESS)]
    if not at or "query" not in flows.columns:
        return
    cap = flows["capture"].to_numpy(dtype=object) if "capture" in flows.columns else np.full(len(flows), "", object)
    query = flows["query"].to_numpy(dtype=object)
    answers = flows["dns_answers"].to_numpy(dtype=object) if "dns_answers" in flows.columns else None
    proto = flows["proto"].to_numpy(dtype=object) if "proto" in flows.columns else np.full(len(flows), "", object)
    got, got_tcp, got6 = set(), set(), set()
    if answers is not None:
        for i in np.flatnonzero(answers != "").tolist():
            if isinstance(answers[i], str) and usable_address(answers[i]):
                got.add((cap[i], _name_key(query[i])))
                if proto[i] == "tcp":
                    got_tcp.add((cap[i], _name_key(query[i])))
                if usable_address6(answers[i]):
                    got6.add((cap[i], _name_key(query[i])))
    orig = flows["orig_h"].to_numpy(dtype=object) if "orig_h" in flows.columns else np.full(len(flows), "", object)
    asked_bits = flows["dns_asked"].to_numpy(dtype=object) if "dns_asked" in flows.columns else None
    v4_caps: set | None = None      # (the captures holding an IPv4 flow: found when first needed)
    # (the names a lookup over TCP got an answer for: read only when a truncated answer is left)
    said_tcp: set | None = None

    def given(column: str, i: int) -> bool:
        return column in flows.columns and isinstance(v := flows[column].iat[i], (bool, np.bool_)) and bool(v)
    for i in at:
        key = (cap[i], _name_key(query[i]))
        reason = str(res[i, 2]).split(",")
        if (key in got or given(DNS_RESOLVED, i)) and asked_bits is not None and reason[0] != "dns_truncated" \
                and _aaaa_over_v6(orig[i], asked_bits[i]) and key not in got6 and not given(DNS_RESOLVED6, i):
            # (only an A answer resolved it: of use to a host with IPv4, which the capture must show)
            if v4_caps is None:
                from .addresses import shows_ipv4
                v4_caps = {c for c in pd.unique(cap).tolist() if shows_ipv4(flows[cap == c])}
            if cap[i] not in v4_caps and not given(SEEN_IPV4, i):
                res[i, 3] = v6_only_detail(str(query[i]))
                continue
        if key in got or given(DNS_RESOLVED, i):
            res[i, 1], res[i, 2] = "ok", "partial" if "partial" in reason else ""
            res[i, 3] = truncated_resolved_detail(str(query[i]), key in got_tcp or given(DNS_RESOLVED_TCP, i)) \
                if reason[0] == "dns_truncated" else ""
        elif reason[0] == "dns_truncated":
            if said_tcp is None:
                rcode = flows["dns_rcode"].to_numpy(dtype=object) if "dns_rcode" in flows.columns \
                    else np.full(len(flows), "", object)
                said_tcp = {(cap[j], _name_key(query[j])) for j in np.flatnonzero(proto == "tcp").tolist()
                            if isinstance(rcode[j], str) and rcode[j] and query[j]}
            if key in said_tcp or given(DNS_ANSWERED_TCP, i):
                res[i, 2] = "rejected,partial" if "partial" in reason else "rejected"
                oh = flows["orig_h"].iat[i] if "orig_h" in flows.columns else ""
                asked = flows["dns_asked"].iat[i] if "dns_asked" in flows.columns else None
                res[i, 3] = truncated_answered_detail(str(query[i]), ":" in str(oh or ""), asked)


#: the detail of a flow neither TCP nor UDP (ICMP, IGMP…): no documented port applies
NOT_TCP_UDP_DETAIL = "neither TCP nor UDP: no documented KSC port applies; not judged"
#: what the detail of an IGMP/MLD flow whose membership reports join groups says after
#: :data:`NOT_TCP_UDP_DETAIL` (internal column ``mcast_groups``, :func:`.inspect._mcast_groups`),
#: the groups ", "-joined; :func:`kscc_traffic.report.group_joins` reads them there (:data:`MCAST_JOINS_RE`)
MCAST_JOINS = "IGMP/MLD membership reports join {groups}"
#: the groups of :data:`MCAST_JOINS` in a detail (group 1: them, ", "-joined)
MCAST_JOINS_RE = re.compile(r"\bIGMP/MLD membership reports join ([0-9A-Fa-f.:]+(?:, [0-9A-Fa-f.:]+)*)")
#: the detail of a TCP or UDP flow on no documented port (either side), to no Kaspersky name
NO_RULE_DETAIL = "no documented KSC port, no Kaspersky name: not judged"


def _agent_name(name: str, rules: RuleSet) -> bool:
    """Is ``name`` one the agent needs: a host name (:func:`is_host_name`: no name holding
    other characters, ``=cmd|'…'!A0.ksc.kaspersky.com`` or an escaped byte, was asked by an
    agent) under a rule's host mask (``*.ksc.kaspersky.com``, ``*.digicert.com``) or under
    :data:`VENDOR_DOMAIN`? Case and a trailing dot ignored."""
    n = name.lower().rstrip(".")
    return bool(n) and is_host_name(n) and (n == VENDOR_DOMAIN or n.endswith("." + VENDOR_DOMAIN)
                        or any(r.matches_host(n) for r in rules.rules))


#: the columns holding names (or other text) from the packets that a flow's detail may quote:
#: untrusted, so a check of the detail's words leaves them out (:func:`says`; the report's
#: ``unquoted_details``)
QUOTED_COLUMNS = ("server_name", "sni", "http_host", "query", "dns_name", "proxy_target", "cert_names", "cert_issuer")


def quoted_names(row: Mapping, keep: Callable[[str], bool]) -> list[str]:
    """The names from the packets that a flow's detail may quote and ``keep`` (str -> bool)
    accepts: each non-empty str value of :data:`QUOTED_COLUMNS` in ``row`` (a flow's columns as a
    mapping; missing ones skipped) and, for ``cert_names``, each of its ``;``-separated names
    too (a detail may quote one of them). Longest first (then by text: the same order every
    run), each once."""
    names = set()
    for c in QUOTED_COLUMNS:
        v = row.get(c)
        if isinstance(v, str) and v:
            names.update(x for x in ((v, *v.split(";")) if c == "cert_names" else (v,)) if x and keep(x))
    return sorted(names, key=lambda x: (-len(x), x))


def without_names(detail: str, names) -> str:
    """``detail`` (str) with each of ``names`` (str, longest first: :func:`quoted_names`)
    replaced by an ellipsis, so that words inside a quoted name are no longer read as the
    detail's own."""
    for v in names:
        detail = detail.replace(v, "\u2026")
    return detail


def says(detail: str, row: Mapping, words: str) -> bool:
    """Whether ``detail`` (str) holds ``words`` (str) outside the names from the packets it
    quotes: those of :func:`quoted_names` of ``row`` that hold ``words`` are taken out first
    (:func:`without_names`), so that an SNI, DNS name or certificate name holding them says
    nothing."""
    detail = str(detail)
    if words not in detail:
        return False
    return words in without_names(detail, quoted_names(row, lambda v: words in v))


def _judge(row: dict, rules: RuleSet) -> tuple[str, str, str, str]:
    """(purpose, verdict, reason, detail) for one flow given as a dict of its columns: as
    :func:`_judge_flow`, with the hint of a path-MTU black hole (internal column ``mtu_hint``,
    :func:`.inspect._mtu_holes`; naming a path-MTU error of the flow's the capture holds:
    :func:`.unreachable.mtu_hint`), that of a reset sent by a device on the path (``reset_hint``,
    :func:`.inspect._reset_hints`) and that of two different ClientHellos for the same bytes
    (``hello_copies``, :func:`.inspect._hello_copies`) appended to the detail of a TCP flow that has one, and that of a
    path-MTU error its sender ignored (:func:`.unreachable.too_big_note`) and that of a fragment
    reassembly timeout (:func:`.unreachable.reassembly_note`) to any flow's (verdict and reason
    unchanged)."""
    purpose, verdict, reason, detail = _judge_flow(row, rules)
    reset_hint = row.get("reset_hint")
    if verdict == "ok" and purpose and purpose != "dns" and row["proto"] == "tcp" \
            and row.get("conn_state") == "RSTR" and isinstance(reset_hint, str) \
            and ((reset_hint.startswith("the reset in the server's name") and "not by the server" in reset_hint)
                 or (reset_hint.startswith("the reset in the client's name")
                     and " and the reset in the server's name" in reset_hint and "not by the endpoints" in reset_hint)):
        # (a connection that worked, ended by a reset a device on the path sent in the server's
        # name: an IPS or firewall cutting the agent's sessions; break-it s52 v6 #7; also when it
        # sent one in the client's name too: break-it s55 tls #2; not a device that answered the
        # whole connection in the server's place, SYNACK_IN_PLACE, whose reset ends what it carried)
        verdict, reason, detail = "blocked", "rejected", f"{PATH_RESET}{'; ' + detail if detail else ''}"
    if verdict == "ok" and purpose and purpose != "dns" and row["proto"] == "tcp" \
            and _number(row, "refused_after_request", int, 0):
        # (the TLS handshake completed, then the server reset the connection at the agent's first
        # request, nothing of its own after its handshake: the path works, the server refused the
        # agent; newcomer s60 #3)
        detail = f"{REFUSED_AFTER_REQUEST}{REFUSED_MEANS}{'; ' + detail if detail else ''}"
    if verdict == "ok" and purpose and purpose != "dns" and row["proto"] == "tcp":
        # a server slow to answer the ClientHello, or one that stopped reading, its window held
        # closed until the client gave up: the connection worked, slowly (newcomer s61 #5)
        for said in (private_ca_text(row, purpose in rules.ids and pinned_rule(rules.by_id(purpose)))
                     if row.get("cert_issuer") else "",
                     slow_hello_text(_seconds(row, "hello_wait_s")),
                     window_held_text(_seconds(row, "window_held_s"), str(row.get("conn_state") or ""))):
            if said:
                detail = f"{detail}; {said}" if detail else said
    if isinstance(reset_hint, str) and reset_hint:
        # a reset a device on the path probably sent in an endpoint's name: the detail does not say
        # that endpoint reset the connection, then that it did not (newcomer 28 F7)
        for side in ("server", "client"):
            if f"not by the {side}" in reset_hint or "not by the endpoints" in reset_hint:
                detail = detail.replace(f"the {side} reset the connection",
                                        f"a reset in the {side}'s name ended the connection")
    if isinstance(reset_hint, str) and reset_hint.startswith(SYNACK_IN_PLACE) and verdict != "blocked":
        # (a device answering in the server's place: told where the connection failed, where it
        # tells a proxy from the server; a working one keeps its detail)
        reset_hint = ""
    for hint in (mtu_hint(row.get("mtu_hint"), row.get("icmp_unreachable")), reset_hint,
                 row.get("hello_copies")):
        if isinstance(hint, str) and REFUSED_OWN in hint and detail.startswith(DP_RESET_ITSELF):
            # (a distribution point's own reset on the client's subnet: the detail says so already)
            hint = "; ".join(x for x in hint.split("; ") if not x.startswith(REFUSED_OWN))
        elif isinstance(hint, str) and REFUSED_OWN in hint and detail.startswith(DP_RESET):
            # (across subnets the detail names the DP's own answer or a firewall between: the
            # TTL tells which is likelier, said once, not "nothing listens" again: newcomer 28 F7)
            hint = "; ".join(DP_OWN_TTL.format(field=x[len(REFUSED_OWN):].split(" (")[0])
                             if x.startswith(REFUSED_OWN) else x for x in hint.split("; "))
        if row["proto"] == "tcp" and isinstance(hint, str) and hint:
            detail = f"{detail}; {hint}" if detail else hint
    for note in (too_big_note(row.get("icmp_unreachable") or ""), reassembly_note(row.get("icmp_unreachable") or "")):
        if note:
            detail = f"{detail}; {note}" if detail else note
    return purpose, verdict, reason, detail


#: how the detail of an ok TLS flow whose server reset the connection right after the client's
#: first request, having sent nothing after the handshake, starts (``refused_after_request``,
#: :func:`.inspect._refused_after_request`; report.readiness counts such flows by it and says them
#: under "To verify": :func:`.report.refused_fix`)
REFUSED_AFTER_REQUEST = ("the TLS handshake completed, then the server reset the connection right after the agent's "
                         "first request (within 1 s), having sent no data after the handshake")
#: ... what that means (a reset with another TTL than the server's is a device's on the path, told
#: apart: :data:`PATH_RESET`)
REFUSED_MEANS = (": the network path works; the server refused the agent at the application level (another "
                 "workspace or region, or the agent's certificate), or a firewall that inspects the traffic reset "
                 "it in the server's name")


#: seconds at least from the client's ClientHello (its last copy) to the server's first byte for
#: an ok TLS flow's detail to say the server answered slowly (:func:`slow_hello_text`; agents and
#: proxies give up after 10-30 s; newcomer s61 #5)
SLOW_HELLO_S = 5.0
#: how that detail starts (report.readiness counts the ok flows whose detail holds it)
SLOW_HELLO = "the server answered the ClientHello after "
#: ... what it means
SLOW_HELLO_MEANS = ("a slow or overloaded server, or a proxy in the path; an agent may give up before (its "
                    "timeout)")


def slow_hello_text(wait_s: float) -> str:
    """The detail of a TLS session whose server sent its first byte ``wait_s`` seconds after the
    client's ClientHello (``hello_wait_s``, :func:`.inspect._hello_waits`; -1: unknown):
    :data:`SLOW_HELLO` with the seconds and :data:`SLOW_HELLO_MEANS` from :data:`SLOW_HELLO_S`
    on, '' below."""
    if wait_s < SLOW_HELLO_S:
        return ""
    return f"{SLOW_HELLO}{_seconds_text(wait_s)} s: {SLOW_HELLO_MEANS}"


#: how the detail of an ok TLS session starts whose certificate for a Kaspersky name came from a
#: private CA (:func:`private_ca_text`; report.readiness counts the ok flows whose detail holds it;
#: break-it s62 #1)
PRIVATE_CA = "the server's certificate for "
#: ... what it means
PRIVATE_CA_MEANS = ("a private CA, no public one (the cloud's servers have public CAs' certificates: the agents "
                    "check them on *.digicert.com): most likely a TLS-inspecting proxy re-signs the connection "
                    "with a CA this device trusts (or the server is a test one)")


#: an issuer that names Kaspersky or KSC as a word (``O=AO Kaspersky Lab``, a self-signed
#: ``CN=*.ksc.kaspersky.com``, a KSC lab's "KSC Test Root CA"): the vendor's or a test server's, no
#: private CA to remark (a corporate CA named so is missed: the price of no remark on every test
#: server's certificate; newcomer s62 #7)
_KASPERSKY_ISSUER = re.compile(r"kaspersky|(?<![a-z0-9])ksc(?![a-z0-9])", re.I)


def private_ca_text(row: Mapping, pinned: bool = False) -> str:
    """The detail of a TLS session whose server certificate, read (up to TLS 1.2: ``cert_names``,
    ``cert_issuer``), is for the name asked (``sni``, else ``dns_name``) under kaspersky.com and was
    issued by a CA that is no public one (:func:`public_ca`), no TLS-inspection product's
    (:func:`inspection_product`: ``tls_intercepted`` already) and not naming Kaspersky or KSC: a corporate
    CA re-signing the connection, which the client accepted; '' otherwise, and on a ``pinned``
    rule's port (a distribution point's own certificate, :func:`pinned_rule`). The verdict is not
    changed (the connection works, and a lab's server may have a private CA's certificate)."""
    issuer = str(row.get("cert_issuer") or "")
    if pinned or not issuer or _KASPERSKY_ISSUER.search(issuer) or public_ca(issuer) or inspection_product(issuer):
        return ""
    certs = split_cert_names(str(row.get("cert_names") or ""))
    asked = str(row.get("sni") or "")
    if not asked or is_ip_literal(asked):
        asked = "" if row.get("proxy_target") else str(row.get("dns_name") or "")
    low = asked.lower().rstrip(".")
    if not certs or not (low == "kaspersky.com" or low.endswith(".kaspersky.com")) \
            or not any(name_matches(asked, c) for c in certs):
        return ""
    return f"{PRIVATE_CA}{asked} was issued by {_bounded(issuer)}: {PRIVATE_CA_MEANS}"


#: seconds at least a responder must have held its receive window closed (zero), taking no byte,
#: until the client's reset or the capture's end for :func:`window_held_text` to say it
WINDOW_HELD_S = 10.0
#: how that detail starts (report.readiness counts the ok flows whose detail holds it)
WINDOW_HELD = "the server held its receive window closed (zero) for "
#: ... what it means
WINDOW_HELD_MEANS = "the server (or a proxy) stopped reading"


def window_held_text(held_s: float, state: str) -> str:
    """The detail of a TCP flow whose responder held its receive window closed ``held_s`` seconds
    (``window_held_s``, :func:`.inspect._window_held`; -1: not) up to its last packet, its
    ``state`` (Zeek's conn_state: ``RSTO``, the client reset the connection; else the capture
    ended first): :data:`WINDOW_HELD` with the seconds, how it ended and
    :data:`WINDOW_HELD_MEANS` from :data:`WINDOW_HELD_S` on, '' below."""
    if held_s < WINDOW_HELD_S:
        return ""
    end = "; the client then reset the connection" if state == "RSTO" else ", until the capture ended"
    return f"{WINDOW_HELD}{_seconds_text(held_s)} s{end}: {WINDOW_HELD_MEANS}"


#: the detail of a CONNECT the proxy answered 2xx through whose tunnel no byte went either way: the
#: proxy reached the target's port, the agent's TLS is not shown (report._carried: no data)
TUNNEL_EMPTY = ("the proxy opened the tunnel (2xx), then nothing went through it either way: the target's port "
                "answered the proxy, the TLS connection itself is not shown")
#: what the detail of a TCP flow to a TLS port says of a direction whose data segments all came as
#: first fragments of IP datagrams never captured whole (:func:`_fragments_lost`; report.mtu_holed
#: advises the path's MTU and fragments for it)
FRAGS_LOST = "arrived only as IP fragments never captured whole"
#: why such fragments stay incomplete, as the detail goes on
FRAGS_WHY = ("(a fragment lost on the way, or overlapping fragments dropped whole, RFC 5722): a firewall or path "
             "that drops IP fragments (RFC 7872), the datagrams fragmented for a tunnel or link with a smaller MTU")


#: a purpose with a host mask whose ports are all below this shares them with other programs (80,
#: 443): its ok flows verify it only when one of them names a server (``server_name``; report)
SHARED_PORTS_BELOW = 1024


def ksc_only(r) -> bool:
    """Is rule ``r`` on ports only a KSC agent uses (TCP 23100-23199, 23700-23799, 27200-27299,
    29200-29299: a host mask under kaspersky.com, ports from 1024 up), not shared with every
    browser (443, 80) nor a distribution point's: a flow there to another name is the agent's,
    pointed at another Administration Server (report), and a certificate there that names no
    server asked for, a TLS-inspection product's, the proxy's (:func:`_judge_flow`)."""
    mask = str(r.host_mask or "").lower()
    return (r.transport == "tcp" and r.port_lo >= SHARED_PORTS_BELOW and r.opener != "agent_to_dp"
            and mask.endswith("." + VENDOR_DOMAIN))


def _fragments_lost(row: dict, state: str) -> tuple[str, str, str] | None:
    """(verdict, reason, detail) of a TCP flow to a TLS port whose handshake did not complete
    (``tls_established`` false) while a direction's data segments all came as first fragments of
    IP datagrams never captured whole (internal column ``unreassembled``, which for TCP reads the
    data segments only: :func:`.inspect._unreassembled`): nothing of that data reached the
    other side's TCP, so a client's ClientHello so sent was never received (the server sent no
    data that arrived whole) and a server's answer so sent never reached the client. ``blocked``,
    ``tls_failed``, the detail holding :data:`FRAGS_LOST`. None otherwise (a server that answered
    had the client's data: the capture, not the path, lost those fragments; so did one whose peer
    acknowledged them, which ``unreassembled`` leaves out: :func:`.inspect._delivered`). Break-it
    s54 v6 #1, #3."""
    side = str(row.get("unreassembled") or "")
    if not side or row.get("tls_established"):
        return None
    if state not in _CLOSED_STATES and float(row.get("duration") or 0.0) + _quiet(row) < TLS_SILENCE_S:
        # (neither side gave up, and the capture ended within TLS_SILENCE_S: as for a ClientHello
        # sent whole, nothing shows a loss yet; fp s54 #1)
        return None
    closed = f"; then the connection closed ({state})" if state in _CLOSED_STATES else ""
    if side in ("orig", "both"):
        if side == "orig" and int(row.get("resp_bytes") or 0) > 0:
            return None
        n = int(row.get("orig_bytes") or 0)
        return ("blocked", "tls_failed", f"ClientHello never received: the client's data (of which {n:,} bytes were "
                f"captured) {FRAGS_LOST} {FRAGS_WHY}; the server cannot have received it and sent no byte that "
                f"arrived{closed}")
    n = int(row.get("resp_bytes") or 0)
    return ("blocked", "tls_failed", f"TLS handshake not completed: the server's answer (of which {n:,} bytes were "
            f"captured) {FRAGS_LOST} {FRAGS_WHY}; the client cannot have received it{closed}")


#: what a ``host_mismatch`` detail adds when the SNI came with an encrypted_client_hello extension
#: (draft-ietf-tls-esni): real ECH sends the provider's public name outside and the name
#: asked encrypted; a browser's GREASE ECH looks the same on the wire (its SNI is the name asked)
ECH_NOTE = ("; the ClientHello carries an Encrypted ClientHello (ECH) extension: {sni} may be only the "
            "ECH provider's public (outer) name, the name asked being encrypted (or the extension is a "
            "browser's GREASE, and {sni} is the name asked)")


#: what an ECH note says when the address was looked up under the rule's mask (:func:`ech_note`):
#: the SNI read may not be the name the agent was given (report.elsewhere_rows)
ECH_MAY_BE = "the encrypted name may be that one"


def ech_note(sni: str, dns_name: str, mask: str) -> str:
    """What a ``host_mismatch`` detail on the SNI ``sni`` adds for a ClientHello with ECH (text
    starting "; "): :data:`ECH_NOTE`, and when the address was looked up as ``dns_name`` under
    ``mask`` (the host mask of the rule), that the encrypted name may be that one."""
    note = ECH_NOTE.format(sni=sni)
    if dns_name and not is_ip_literal(dns_name) and under_mask(dns_name, mask):
        note += f"; the address was looked up as {dns_name}, under {mask}: {ECH_MAY_BE}"
    return note


#: the flow casts of group delivery (a rule's cast among them is what the page documents)
_GROUP_CASTS = ("broadcast", "multicast")
#: IPv6 has no broadcast: its all-nodes group is where a broadcast goes (RFC 4291 §2.7.1)
_ALL_NODES = ("ff02::1", "ff01::1")


def _judge_dns(row: dict, rules: RuleSet, partial: bool, answered: bool, lost_answers: bool,
               icmp_text: str, state: str) -> tuple[str, str, str, str]:
    """(purpose, verdict, reason, detail) of a DNS flow (to port 53, or one whose payload is DNS
    from another port than 53): :func:`_judge_flow`'s, given what it read of the row first
    (``partial``: begun before the capture; ``answered``: the responder sent packets that
    arrived whole; ``lost_answers``: its datagrams arrived only as fragments; ``icmp_text``:
    :func:`.unreachable.delivery_error` of the flow's ICMP error; ``state``: the Zeek
    ``conn_state`` it is judged by). The purpose is always ``dns``."""
    proto = row["proto"]
    # responses matching no query (transaction ID, question): none the client accepts
    stray = row.get("dns_mismatch") or ""
    if stray and not row.get("dns_rcode") and not partial:
        return ("dns", "blocked", "no_answer", f"{DNS_NOT_ACCEPTED}{stray}: "
                "a resolver or DNS proxy answering with the wrong transaction ID, or for another question "
                "(the client drops such answers)")
    if icmp_text and not answered:
        return "dns", "blocked", "icmp_unreachable", f"DNS query answered by ICMP {icmp_text}{what_it_means(icmp_text)}"
    if proto == "tcp" and state == "REJ":
        return "dns", "blocked", "rejected", DNS_TCP_RESET
    if not answered and row["cast"] == "unicast" and not partial:
        if lost_answers:
            return "dns", "blocked", "no_answer", f"DNS query without an answer: {_lost(row, 'answer')}"
        return "dns", "blocked", "no_answer", "DNS query without an answer"
    refused = _dns_error_detail(row)
    if refused and not usable_address(row.get("dns_answers") or "") \
            and _agent_name(row.get("query") or "", rules):
        if row.get("dns_error_aaaa_only") and row.get("dns_rcode") not in DNS_NO_ERROR:
            if ":" in str(row.get("orig_h") or ""):
                # asked over IPv6: the host may have no IPv4 to use an A answer with
                return ("dns", "blocked", "rejected,partial" if partial else "rejected",
                        f"{refused}: {AAAA_OVER_IPV6}")
            # only the IPv6 address was refused: an agent connects over IPv4 with its A answer
            # (a separate query, often from another source port: another flow)
            return ("dns", "ok", "partial" if partial else "",
                    f"{refused}: {AAAA_ONLY}; an agent connects over IPv4 with "
                    "the A answer (an IPv6-only network would need it)")
        return ("dns", "blocked", "rejected,partial" if partial else "rejected",
                f"{refused}; the agent needs this name: without its address it cannot connect "
                f"({DNS_RCODE_FIX.get(row.get('dns_rcode') or '', DNS_ERROR_FIX)})")
    over_v6 = ":" in str(row.get("orig_h") or "")
    if not refused and row.get("dns_answers", None) == "" and cut_answer(row.get("dns_asked")) \
            and not (str(row.get("proto")) == "udp" and truncated_answer(row.get("dns_asked"))):
        # (its answer records cut by the capture: no statement on the name's addresses; a
        # truncated one, TC, is judged by the retry over TCP it asks for: review s54 #3)
        return "dns", "ok", "partial" if partial else "", dns_cut_detail(row.get("query") or "")
    if not refused and row.get("dns_rcode") == "NOERROR" and row.get("dns_answers", None) == "" \
            and no_address_counts(row.get("dns_asked"), over_v6) \
            and _agent_name(row.get("query") or "", rules):
        # NODATA for a needed name (asked for an address it needs): blocked unless another
        # lookup of it got an address (_note_resolved, across the table)
        asked = row.get("dns_asked")
        if str(row.get("proto")) == "udp" and truncated_answer(asked):
            # (the answer truncated, TC: the client is to ask again over TCP; no lookup of the
            # name getting an address, over TCP either, is what _note_resolved leaves blocked)
            return ("dns", "blocked", "dns_truncated,partial" if partial else "dns_truncated",
                    truncated_detail(row.get("query") or ""))
        return ("dns", "blocked", "rejected,partial" if partial else "rejected",
                no_address_detail(row.get("query") or "", over_v6, asked))
    if not refused and row.get("dns_answers", None) == "" and unreadable_answer(row.get("dns_asked")):
        # (a name no agent needs: not judged, but an empty NOERROR would hide the broken
        # answer; newcomer 33)
        return "dns", "ok", "partial" if partial else "", dns_unreadable_detail(row.get("query") or "")
    if not refused and _truncated_partial(row, rules):
        # (a truncated answer with part of the addresses: ok, the note cleared when a retry
        # over TCP was answered, _note_truncated_partial, across the table)
        return "dns", "ok", "partial" if partial else "", truncated_partial_detail(row.get("query") or "")
    if refused and row.get("dns_error_aaaa_only") and row.get("dns_rcode") not in DNS_NO_ERROR \
            and usable_address(row.get("dns_answers") or ""):
        # (an error to the AAAA question only, the A question answered with an address in the
        # same flow: the one socket of glibc's resolver asks both; break-it s57 #11)
        return ("dns", "ok", "partial" if partial else "",
                f"{refused}: {AAAA_ONLY}; {A_ANSWERED_HERE}: an agent connects over IPv4 with that answer "
                "(an IPv6-only network would need the AAAA one)")
    return "dns", "ok", "partial" if partial else "", refused


def _judge_flow(row: dict, rules: RuleSet, mask: bool = True) -> tuple[str, str, str, str]:
    """(purpose, verdict, reason, detail) for one flow given as a dict of its columns; ``mask``
    False: no ``host_mismatch`` (the host mask and the cloud name on a distribution point's port
    not checked: how the connection itself went, :func:`_failed_note`)."""
    proto = row["proto"]
    if proto not in ("tcp", "udp"):
        return "", "unclassified", "", NOT_TCP_UDP_DETAIL
    resp_p, orig_p = int(row["resp_p"]), int(row["orig_p"])
    if resp_p < 0 and orig_p < 0:
        if (row.get("unreassembled") or "") in ("orig", "resp", "both"):
            # (later fragments of datagrams never completed: no snaplen cut them; s52 v6 #5)
            return "", "unclassified", "", FRAG_TAILS_DETAIL.format(proto=proto.upper())
        return "", "unclassified", "", NO_PORTS_DETAIL.format(proto=proto.upper())
    name = row.get("server_name") or ""
    partial = bool(row.get("partial"))
    state = _judged_state(row)
    # (UDP: a responder whose every datagram arrived only in part, IP fragments never all
    # captured, delivered nothing: not an answer)
    unreassembled = (row.get("unreassembled") or "") if proto == "udp" else ""
    lost_answers = unreassembled in ("resp", "both")
    answered = int(row["resp_pkts"]) > 0 and not lost_answers
    # (a path-MTU error asks for smaller packets, the destination is reachable: not judged here,
    # told in the detail when ignored: _judge)
    icmp_text = delivery_error(row.get("icmp_unreachable") or "")
    # only the originator's packets captured, and they acknowledge the responder's (a SYN-ACK,
    # maybe data): one direction captured (a mirror of one direction, asymmetric routing)
    blind = proto == "tcp" and not answered and (row.get("acked_unseen") or "") == "resp"

    if resp_p == 53 or row.get("service") == "dns" and orig_p != 53:
        return _judge_dns(row, rules, partial, answered, lost_answers, icmp_text, state)

    # an explicit proxy: the purpose is that of the target (a CONNECT's, or the URI's of a request
    # in absolute-form), the name is the one asked for
    target = (row.get("proxy_target") or "") if proto == "tcp" else ""
    absolute = target.startswith(_ABSOLUTE)
    if target:
        host, port = split_host_port(target.split("://", 1)[1] if absolute else target)
        host = host or ""
        if is_ip_literal(host):
            host = ""  # (an address: the SNI inside the tunnel, if any, names the server)
        named = host or row.get("sni") or ""
        rule = rules.match(proto, port, row["cast"]) if port is not None else None
        if rule is None:
            if named and not is_ip_literal(named) and _under_domain(named, VENDOR_DOMAIN):
                return ("", "unexpected", "undocumented_port",
                        f"{_proxy_request(target)} through the proxy {endpoint_text(row['resp_h'], resp_p)}: "
                        f"TCP {port} "
                        "to a Kaspersky name; no rule documents this port")
            return "", "unclassified", "", NO_RULE_DETAIL
    else:
        rule = rules.match(proto, resp_p, row["cast"])
    if rule is None:
        back = rules.match(proto, orig_p, row["cast"]) if orig_p >= 0 else None
        # (a connection *to* a well-known service port is an ordinary outbound one whose source
        # port a NAT/PAT device or a dynamic port range happened to pick from a documented range)
        if back is not None and proto == "tcp" and "S" in row["history"].lstrip("^")[:1] \
                and resp_p >= WELL_KNOWN_PORTS:
            return (back.id, "unexpected", "wrong_direction",
                    f"connection opened from the documented port {orig_p} ({back.id}) towards "
                    f"{endpoint_text(row['resp_h'], resp_p)}" + _attempt_failed(row, icmp_text, answered, partial))
        if name and not is_ip_literal(name) and _under_domain(name, VENDOR_DOMAIN):
            if proto == "udp" and resp_p == 443 and row.get("service") == "quic":
                # HTTP/3: a browser's (it falls back to TCP 443); the agent speaks TCP
                return "", "unclassified", "", QUIC_DETAIL
            return ("", "unexpected", "undocumented_port",
                    f"{proto.upper()} {resp_p} to a Kaspersky name; no rule documents this port"
                    + _attempt_failed(row, icmp_text, answered, partial))
        other = {"tcp": "udp", "udp": "tcp"}.get(proto)
        twin = rules.match(other, resp_p, "unicast") or rules.match(other, resp_p, row["cast"]) \
            if other and resp_p >= WELL_KNOWN_PORTS else None
        if twin is not None:
            # (the port of a documented purpose, over the other transport: break-it s55 dp #11, a
            # TCP connection to UDP 15000's port said only "no documented KSC port"; not the
            # well-known 443 and 80, which QUIC and others use over UDP)
            return "", "unclassified", "", (f"{proto.upper()} {resp_p}: the page documents {other.upper()} {resp_p} "
                                            f"({twin.id}), not {proto.upper()}: not judged (another program's "
                                            "traffic, or a port set up with the wrong transport?)")
        return "", "unclassified", "", NO_RULE_DETAIL

    def done(verdict: str, reason: str, detail: str) -> tuple[str, str, str, str]:
        if reason == "tls_failed" and icmp_text and not says(detail, row, "ICMP"):
            # (an ICMP error quoting the connection's data: a firewall filtering by content)
            detail = f"{detail}; its data was answered by ICMP {icmp_text}"
        if reason == "tls_failed" and row.get("hello_split") and not says(detail, row, HELLO_UNACKED):
            # (a large ClientHello over several segments: what some middleboxes fail on)
            detail = (f"{detail}; the ClientHello was {split_text(str(row.get('hello_split')))[0]}: some firewalls and proxies "
                      f"fail on a ClientHello split across segments{_pq_note(str(row.get('hello_split')))}")
        if row.get("server_binary") and row.get("server_proto") == "tls":
            # (the server's whole answer 1-4 bytes starting a TLS record header: TLS, too few to tell)
            got = str(row.get("server_binary"))
            n = len(got.split())
            note = (f"the server answered with only {n} byte{'s' if n != 1 else ''} ({got}), "
                    f"{TLS_RECORD_START_SERVER}")
            detail = f"{detail}; {note}" if detail else note
        elif reason == "tls_failed" and row.get("server_binary"):
            # (the ClientHello answered by bytes that are neither TLS nor text: another service
            # on the port, or an obfuscated protocol; said, not judged)
            detail = f"{detail}; the server answered with bytes that are not TLS ({_binary_text(row)})"
        if verdict == "ok" and proto == "udp" and rule.cast in _GROUP_CASTS and row["cast"] != rule.cast \
                and (row["cast"] in _GROUP_CASTS or (row["cast"] == "unicast" and rule.cast == "multicast")) \
                and str(row["resp_h"]).lower() not in _ALL_NODES:
            # (a multicast to the agents' broadcast port, a broadcast or a unicast to the distribution
            # point's multicast port: the purpose's port, not the delivery the page documents;
            # break-it 19 F9, s56 v6 #7)
            note = (f"sent as a {row['cast']} (to {row['resp_h']}), where the page documents UDP {rule.port_text} "
                    f"as a {rule.cast}: another application's datagram on this port?")
            detail = f"{detail}; {note}" if detail else note
        if verdict != "ok" and reason != "wrong_direction" and not target and rule.opener == CLOUD_OPENER \
                and local_address(str(row["resp_h"])):
            # (a cloud name that led to a local address: the DNS sent the agent there; break-it s50 #1)
            note = local_cloud_note(row, rules)
            if note:
                detail = f"{detail}; {note}" if detail else note
        if partial:
            reason = f"{reason},partial" if reason else "partial"
        return rule.id, verdict, reason, detail

    core = history_core(str(row.get("history") or "")).lstrip("^")
    if proto == "tcp" and (_INVALID_PROBE.match(core) or (not partial and _INVALID_XMAS.match(core))):
        # (packets with SYN and FIN or RST set together, nothing back but resets: Zeek's ``Q``,
        # ``Qr``; a reset answers no handshake, and shows no port open: break-it s53 TCP pass #1;
        # SYN, FIN and RST all set, which Zeek writes ``I``: zeek-s62)
        reset = "r" in str(row.get("history") or "")
        return rule.id, "unclassified", "partial" if partial else "", INVALID_SYN_RESET if reset else INVALID_SYN
    if proto == "tcp" and row["cast"] in _GROUP_CASTS and not answered and not target:
        # (no TCP connection to a group address: no firewall rule makes it work; break-it 23 F4)
        return done("unexpected", "not_unicast", group_tcp_detail(row["cast"], str(row["resp_h"])))

    # a known name outside the rule's mask: another service on a shared port (443, 80…), whatever
    # happened to it; judged before "blocked" so it never counts as a failure of this purpose
    # (through a proxy both the host asked of the proxy and the SNI asked of the TLS server in the
    # tunnel must be under the mask; ``what`` says which one is not)
    check, what, where = (host, "URI host " if absolute else "CONNECT host ", "") if target else (name, "", "")
    if target and not absolute and rule.host_mask and (not check or under_mask(check, rule.host_mask)):
        sni = row.get("sni") or ""
        if sni and not is_ip_literal(sni) and not under_mask(sni, rule.host_mask):
            check, what, where = sni, "SNI ", f" (inside CONNECT {target})"
    if check and is_ip_literal(check):
        check = row.get("dns_name") or ""  # (never for a CONNECT: its dns_name names the proxy)
    certs = split_cert_names(row.get("cert_names") or "")
    from_cert = False
    if not check and not (row.get("sni") or "") and certs and rule.host_mask:
        # no name asked: the certificate says who answered (a pattern such as *.ksc.kaspersky.com
        # is itself under that mask; any of its names under the mask will do)
        check = next((c for c in certs if under_mask(c, rule.host_mask)), certs[0])
        from_cert = True
        alert = str(row.get("tls_alert") or "")
        issuer = str(row.get("cert_issuer") or "")
        if not under_mask(check, rule.host_mask) and ksc_only(rule) \
                and (inspection_product(issuer)
                     or (alert.startswith("client:") and alert.endswith(_CERT_REFUSALS) and not public_ca(issuer))):
            # (on a port only the agent uses, a certificate a TLS-inspection product issued, or one of
            # a private CA the client refused: a proxy's own, which names the proxy, not the server
            # asked for; judged as interception, not as another program's traffic: icept s54 #2; a
            # public CA's for another name is another server's: review s54 #5)
            check, from_cert = "", False
    history = str(row.get("history") or "")
    if _inbound(rule, proto, target, partial, history, str(row.get("orig_h") or ""),
                str(row["resp_h"])) and not _resolved_for(row, rule):
        # a cloud server's port on a local address, opened from outside: not the agent's outbound
        # connection (the cloud server is never at a local address; it never connects to agents)
        return done("unexpected", "wrong_direction", inbound_detail(str(row.get("orig_h") or ""),
                                                                    str(row["resp_h"]), resp_p, rule.id)
                    + _attempt_failed(row, icmp_text, answered, partial))
    if row.get("opened_cloud") and _inbound(rule, proto, target, partial, history, "", "") is None \
            and not _resolved_for(row, rule):
        # the same port of an address that had itself connected to the cloud before: an agent,
        # whatever its address (a public one, a global IPv6 one: break-it s53 DP pass #1)
        return done("unexpected", "wrong_direction",
                    agent_inbound_detail(str(row.get("orig_h") or ""), str(row["resp_h"]), resp_p, rule.id,
                                         str(row.get("opened_cloud")))
                    + _attempt_failed(row, icmp_text, answered, partial))

    orig_cloud = str(row.get("orig_cloud_name") or "")
    if orig_cloud and _inbound(rule, proto, target, partial, history, "", "") is None \
            and not _resolved_for(row, rule):
        # opened from an address a cloud server's name was resolved to in the capture: the cloud
        # server connecting in, which it never does, whatever the addresses (s61 newcomer #1: the
        # agent at a documentation-range address refusing it was judged its own connection, blocked)
        return done("unexpected", "wrong_direction",
                    cloud_inbound_detail(str(row.get("orig_h") or ""), str(row["resp_h"]), resp_p, rule.id,
                                         orig_cloud)
                    + _attempt_failed(row, icmp_text, answered, partial))

    if row.get("opened_cloud") and rule.opener == "agent_to_dp" and proto == "tcp" and not target and not partial \
            and str(row.get("history") or "").startswith("S"):
        # a distribution point's port of an address that had itself connected to such a port of
        # this originator before: the distribution point connecting to its own agent (s55 DP pass #6)
        return done("unexpected", "wrong_direction",
                    dp_inbound_detail(str(row.get("orig_h") or ""), str(row["resp_h"]), resp_p, rule.id,
                                      str(row.get("opened_cloud")))
                    + _attempt_failed(row, icmp_text, answered, partial))

    def mismatch(detail: str) -> tuple[str, str, str, str]:
        # (not this purpose's traffic, whatever happened to it; a connection that failed says so)
        return done("unexpected", "host_mismatch", detail + _failed_note(row, rules))

    if mask and rule.opener == "agent_to_dp":
        # a distribution point's port towards a name of the cloud: not a distribution point (on the
        # LAN), but the cloud server contacted on an on-premises port (agents still set up for an
        # on-premises Administration Server); an address of a local network stays a DP flow.
        # Through a proxy, the name the CONNECT (or the request in absolute-form) asked for, else
        # the SNI in the tunnel; the proxy's own address says nothing (icept s54 #1)
        if target:
            cloud = _cloud_name({"sni": host or row.get("sni") or ""}, rules)
            if cloud and host:
                cloud = (cloud[0], "the proxy request")
        else:
            cloud = _cloud_name(row, rules)
        if cloud and (target or not local_address(str(row["resp_h"]))):
            return mismatch(_onprem_detail(proto, port if target else resp_p, cloud, rules))
    if mask and rule.host_mask and check and not from_cert and "*" in check.split("."):
        # (a certificate's wildcard pattern asked as a name: no client asks for one, RFC 6066 §3)
        return mismatch(f"{what}{check}{where} is not a host name (a "
                    "certificate's wildcard pattern, which no client asks for: forged, a probe or a broken proxy)")
    if mask and rule.host_mask and check and not under_mask(check, rule.host_mask):
        if not is_host_name(check):
            if from_cert:   # (a TLS-inspecting proxy's own certificate: "Fortinet SSL Inspection")
                return mismatch(f"no name asked; the server's certificate "
                            f"names {check}, not a host name under {rule.host_mask}")
            if what:
                return mismatch(f"{what}{check}{where} is not a host name "
                            "(characters no host name has: forged or damaged)")
            # (the name from an HTTP Host header: no SNI, and not the DNS name the address was
            # resolved from, which the server name is otherwise; newcomer s60 #10)
            came = "an HTTP Host name" if not row.get("sni") and check == name and check != row.get("dns_name") \
                else "an SNI or DNS name"
            return mismatch(f"{check} is not a host name ({came} "
                        "holding characters no host name has: forged or damaged)")
        # (no name asked, none resolved: say where the name came from, as the name column is empty)
        source = " (from the server's certificate)" if from_cert else ""
        if row.get("tls_ech") and not from_cert and check == (row.get("sni") or ""):
            source += ech_note(check, str(row.get("dns_name") or ""), rule.host_mask)
        return mismatch(f"{what}{check}{where} is not under {rule.host_mask}{source}")

    # blocked
    if icmp_text and not (proto == "tcp" and state not in _NO_ANSWER_STATES | {"REJ"}) \
            and not (proto == "udp" and answered):
        # (a port unreachable carrying a cloud server's address, not through a proxy: not the cloud
        # server's own answer, most likely; a local address keeps "nothing listens there")
        cloud = rule.opener == CLOUD_OPENER and not target and not local_address(str(row["resp_h"]))
        probe = traceroute_probe(icmp_text)
        if probe:   # (its TTL / hop limit ran out on the way: the path, not the port)
            return rule.id, "unclassified", "partial" if partial else "", probe
        detail = answered_by(icmp_text, cloud)
        if rule.opener == "agent_to_dp" and _refused_on_the_way(icmp_text, str(row["resp_h"])):
            # (a router or firewall between the agent and the distribution point refused it, not the
            # distribution point: its rules are the ones to change; s55 DP pass #12)
            detail += f"; {DP_PATH_REFUSED}"
        return done("blocked", "icmp_unreachable", detail)
    if proto == "tcp" and row.get("tcp_hdr_cut"):
        # no packet's flags, sequence numbers or length were captured: nothing shows whether the
        # connection was opened, answered or refused (Zeek skips such packets; not "partial":
        # its SYN may be among them)
        return rule.id, "unclassified", "", HDR_CUT_DETAIL
    if proto == "tcp" and partial and not answered:
        return done(*_partial_silence(row))
    if proto == "tcp" and partial and int(row["orig_pkts"]) == 0:
        # only the responder's packets (one captured direction, or a capture that began as the
        # connection ended: a lone RST, a SYN-ACK sent again): nothing shows the purpose works
        n = int(row["resp_pkts"])
        history = str(row.get("history") or "")
        if "h" in history:
            # (its SYN-ACK is the connection's start: not a capture started mid-connection)
            if set(history_core(history)) <= set("^h"):   # (SYN-ACKs alone: the SYN just before them missed?)
                return done("unclassified", "", f"only the responder's SYN-ACK seen ({n} packet{'s' if n != 1 else ''}), "
                            "none from the originator: its SYN was not captured (the capture began after it, or "
                            "only one direction captured?); not judged")
            return done("unclassified", "", f"only the responder's {n} packet{'s' if n != 1 else ''} seen "
                        f"(its SYN-ACK among them), none from the originator: {ONE_WAY_HINT}; not judged")
        return done("unclassified", "", f"capture started mid-connection; only the responder's {n} "
                    f"packet{'s' if n != 1 else ''} seen, none from the originator: not judged")
    if proto == "tcp" and partial:
        closing = _responder_only_closes(str(row.get("history") or ""))
        if closing:
            return done(*_partial_closes(row, closing))
        if _unasked_synack(str(row.get("history") or "")):
            return done("unclassified", "", UNASKED_SYNACK_DETAIL)
    if blind and not partial:
        return done(*_one_way(row, rule.app_protocol in ("tls", "https")))
    if proto == "tcp" and not partial:
        if state == "REJ" and _bare_handshake_end(row) in ("aborted", "reset"):
            # (Zeek's REJ also when both sides reset a handshake that completed, nothing sent: the
            # SYN was answered, the port is open; who reset first tells what happened: break-it 23 F3)
            return done(*_reset_handshake(_bare_handshake_end(row)))
        if state == "REJ":
            if rule.opener == "agent_to_dp":
                # (a LAN purpose: the reset is the distribution point's own answer when no router
                # is between; the detail starts with DP_RESET, which report.readiness counts)
                return done("blocked", "rejected", dp_reset_detail(str(row.get("orig_h") or ""), str(row["resp_h"])))
            return done("blocked", "rejected", "the SYN was answered by a TCP reset")
        if state == "RSTR" and _SYN_FIN_RST_ANSWER.match(core):
            # (the responder's only packet set SYN, FIN and RST together, Zeek's ``i``: a reset,
            # no SYN-ACK; Zeek's RSTR as its SYN bit makes the originator ESTABLISHED: zeek-s63)
            return done("blocked", "rejected", "the SYN was answered by a TCP reset (one packet with SYN, FIN and "
                        "RST set together, which no TCP stack sends as an answer: a firewall or IPS answering in "
                        "the server's place?)")
        wrong = row.get("syn_answer") or ""
        if wrong:   # (the detail starts with STALE_ANSWER: report.readiness counts such flows)
            # the SYN answered, but not acknowledged: the originator resets such an answer and
            # no connection is made (RFC 9293 §3.10.7.3)
            return done("blocked", "rejected", STALE_ANSWER + (
                "only by an ACK of another connection (an RFC 5961 challenge ACK: the server, or a "
                "firewall or NAT on the way, still holds an old connection on this address and port)"
                if wrong == "ack" else
                "by a SYN-ACK acknowledging another sequence number than the SYN's (a middlebox "
                "answering for an old connection on this address and port, or a broken SYN proxy)"))
        if state in ("S0", "RSTOS0", "SH", "OTH") and _ACK_ONLY.match(core):
            # (a bare ACK acknowledging the SYN, never a SYN-ACK: Zeek's ``Sa`` S0; the client
            # drops it, RFC 9293 §3.10.7.3, and no connection is made, whether or not it then
            # gave up with a RST or FIN: zeek-s63)
            return done("blocked", "rejected", ACK_ONLY_ANSWER)
        shut = row.get("window_closed") or ""
        if shut:
            # (a tarpit: the SYN answered, the window never opened: nothing can be sent)
            return done("blocked", "no_answer", WINDOW_CLOSED.format(s=shut) + window_close_end(state))
        if (state in _NO_ANSWER_STATES or (state == "OTH" and _SYN_THEN_FIN_RST.match(core))) and not answered:
            n = int(row["orig_pkts"])
            if state == "S0" and history_core(str(row.get("history") or "")).lstrip("^") == "S":
                other = row.get("answered_from") or ""
                if other:
                    # (answered, from elsewhere: the client takes no such answer; the detail starts
                    # with ANSWERED_ELSEWHERE, which report.readiness counts)
                    return done("blocked", "wrong_source", answered_elsewhere_detail(
                        n, other, endpoint_text(row["resp_h"], row["resp_p"])))
                return done("blocked", "no_answer", f"SYN sent {n} time{'s' if n != 1 else ''}, no answer"
                            + unrouted_source_note(str(row.get("orig_h") or ""), str(row["resp_h"])))
            return done("blocked", "no_answer",
                        f"connection attempt without an answer ({n} packet{'s' if n != 1 else ''} sent)")
        after = _bare_handshake_end(row)
        if after == "unacked" and int(row["orig_pkts"]) >= 2 \
                and float(row.get("duration", 0)) + _quiet(row) >= TLS_SILENCE_S:
            n, m = int(row["orig_pkts"]), int(row["resp_pkts"])
            host = row.get("synack_not_taken") or ""
            if host:
                # (captured where the originator sends from: the answers reached its host, which
                # dropped them; the detail starts with SYNACK_NOT_TAKEN: report.readiness counts it)
                return done("blocked", "no_answer", SYNACK_NOT_TAKEN + (
                    f": it sent its SYN {n} times and never acknowledged "
                    f"{'the SYN-ACK' if m == 1 else f'the {m} SYN-ACKs'} answering it, though "
                    f"{'it was' if m == 1 else 'they were'} captured where it sends from (its SYNs carry {host}, "
                    "as sent: no router decremented it, so the capture was taken on its host or its own network "
                    f"segment): its own firewall, security software or a filter driver drops {'it' if m == 1 else 'them'}"))
            return done("blocked", "no_answer", f"{SYNACK_LOST}: it sent its SYN {n} "
                        f"times and never acknowledged {'the answer' if m == 1 else f'the {m} answers'} (a capture on the "
                        "server's side of a filter dropping that direction?)")
        if after == "reset":
            return done(*_reset_handshake(after))
        if after == "closed" and float(row.get("duration", 0)) < TLS_SILENCE_S:
            return done(*_closed_handshake(rule.app_protocol in ("tls", "https")))
    if proto == "udp" and not answered and row["cast"] == "unicast" \
            and rule.opener != "inbound_to_agent" and not partial:
        if lost_answers:
            return done("blocked", "no_answer", f"UDP request without a reply: {_lost(row, 'reply')}")
        return done("blocked", "no_answer", "UDP request without a reply")
    if target:
        refused = (_proxy_answer(row, target) or _empty_tunnel_closed(row, target, state)
                   or _page_answer(row, rule, target))
        if refused is not None:
            return done(*refused)
    elif rule.app_protocol == "http" and proto == "tcp" and not partial and row.get("client_proto") == "http":
        # plain HTTP sent straight to the server: a transparent web filter answers as a proxy does
        refused = (_proxy_answer(row, _direct_target(row), direct=True) or _foreign_redirect(row, rule)
                   or _page_answer(row, rule) or _later_refusal(row))
        if refused is not None:
            return done(*refused)

    # what the payload says
    tls_rule = rule.app_protocol in ("tls", "https")
    cproto, sproto = row.get("client_proto", ""), row.get("server_proto", "")
    # a ClientHello the snaplen cut before it could be read (a few bytes of it, or none: headers
    # only): the handshake is judged from the TCP packets (an alert still readable, a connection
    # closed, sequence numbers; went_on stands for tls_established where no byte was read)
    unread = (tls_rule and proto == "tcp" and not partial and not target and bool(row.get("payload_cut"))
              and row.get("service") not in _SSL_SERVICES and cproto in ("", "tls") and sproto in ("", "tls")
              and _orig_sent_data(row))
    if not tls_rule and rule.app_protocol == "tcp" and rule.opener == "client_to_cloud" and proto == "tcp" \
            and cproto == "tls":
        # TLS on a TCP purpose to the Internet (KSN on 1443): TLS is not documented there, so its
        # handshake is not judged, but a TLS-inspecting proxy in its path is (as for the TLS ones)
        intercepted = _interception(row, split_cert_names(row.get("cert_names") or ""), target, False)
        if intercepted is not None:
            return done(*intercepted)
    if tls_rule and proto == "tcp" and cproto == "tls" and not sproto and not partial and not target \
            and not row.get("payload_cut") and row.get("client_binary") and row.get("service") not in _SSL_SERVICES:
        # the client's whole stream 1-4 bytes that start a TLS record header (a lone 16): too few
        # bytes to tell a ClientHello, not cleartext (Wireshark: a segment of a PDU never finished)
        return done(*_record_start(row, state))
    frags = _fragments_lost(row, state) if tls_rule and proto == "tcp" and not partial and not target else None
    if frags is not None:
        return done(*frags)
    if tls_rule and (cproto == "tls" or sproto == "tls" or unread):
        if cproto == "tls" and sproto == "http":
            # the ClientHello answered in cleartext HTTP: a web server, captive portal or filter on
            # the port (in a tunnel, http_status is the proxy's answer: the answer in it is quoted)
            status = str(row.get("tunnel_http_status") or "") if target else str(row.get("http_status") or "")
            inside = " inside the CONNECT tunnel" if target else ""
            # (bytes that start like a TLS record but hold no ClientHello that could be read: not
            # called one; newcomer 32 F8)
            hello = "the ClientHello" if row.get("service") in _SSL_SERVICES else NO_HELLO
            if status[:3] == PORTAL_STATUS:
                # (RFC 6585 §6: a captive portal's answer, the network wants a login first; advised
                # as a redirect to its page: report.REDIRECT_ANSWER; break-it s52 v6 #9)
                return done("blocked", "rejected", f"{FILTER_ANSWER}{status} to {hello}{inside} "
                            f"where TLS is documented: {PORTAL_ANSWER}")
            if status[:3] in FILTER_STATUSES:   # (the detail starts with FILTER_ANSWER: report.readiness)
                return done("blocked", "rejected", f"{FILTER_ANSWER}{status} to {hello}{inside} "
                            "where TLS is documented: a web filter's refusal or a failing gateway")
            if status[:1] == "2":
                # (no web server serves a page for a ClientHello, it answers 400 if anything: a page
                # served in the server's place, a filter's block page; icept s54 #7)
                return done("blocked", "rejected", f"{FILTER_ANSWER}{status} to {hello}{inside} "
                            f"where TLS is documented: {PAGE_ANSWER}")
            if status[:3] in REDIRECT_STATUSES:
                # (a redirect instead of a ServerHello: the agent cannot connect; a captive portal
                # or web filter sends the browser to its page)
                where = row.get("http_location") or ""
                to = f" to {where}" if where else " (its Location not read)"
                return done("blocked", "rejected", f"{FILTER_ANSWER}{status} to {hello}{inside} "
                            f"where TLS is documented: a redirect{to} (a captive portal or web filter?)")
            cut = (" (its status line lost by the capture)" if row.get("start_lost") in ("resp", "both")
                   else f" (its status line {_cut_by(row)})") if not status and row.get("payload_cut") else ""
            return done("unexpected", "not_tls", f"the server answered HTTP{f' ({status})' if status else ''} "
                        f"to {hello}{inside} where TLS is documented{cut}")
        head = row.get("server_head") or ""
        if cproto == "tls" and sproto == "other" and head and not partial and not row.get("tls_established") \
                and not (row.get("payload_cut") and row.get("first_bytes_cut", True)):
            # cleartext that is neither TLS nor HTTP: an SSH or SMTP banner, a filter's text
            # refusal (another service on the port, a port forward to the wrong host)
            return done("unexpected", "not_tls", f"the server sent cleartext that is not TLS where TLS is "
                        f"documented: \"{head}\" (another service on the port, or a filter's refusal)")
        intercepted = _interception(row, certs, target, unread, pinned=pinned_rule(rule))
        if intercepted is not None:
            return done(*intercepted)
        # the ClientHello was captured (in a CONNECT tunnel: http,ssl): the handshake was seen
        # (or its ClientHello lost, the client's captured bytes starting with a cleartext alert
        # answering the server's TLS: as aborted as with the ClientHello read; newcomer2 31 F2)
        hello = row.get("service") in _SSL_SERVICES or unread \
            or (not partial and cproto == "tls" and sproto == "tls" and bool(row.get("tls_alert"))) \
            or _refused_midway(row)
        refused = _number(row, "tls13_refused", int, 0)
        alert = str(row.get("tls_alert") or "")
        if refused > 0 and alert.startswith("server: "):
            # (its alert in the clear, not an encrypted one's size: named; certificate_required
            # explained, newcomer 36 F3)
            return done("blocked", "tls_failed", f"TLS 1.3: after the client's Finished the server sent the alert "
                        f"{alert[8:]} in the clear and closed the connection ({state}): it refused the client "
                        "after the handshake" + (CERT_REQUIRED_MEANS if CERT_REQUIRED in alert else ""))
        if refused > 0:
            return done("blocked", "tls_failed", f"TLS 1.3: after the client's Finished the server sent only "
                        f"{refused} bytes, an encrypted alert's size, and closed the connection ({state}): it "
                        "refused the client after the handshake (certificate_required: a client certificate "
                        "it asks for and did not get, e.g. through a TLS-inspecting proxy)")
        quit_ = _number(row, "tls_client_quit", int, 0)
        if quit_ > 0 and row.get("tls_version") == "TLS 1.3" and not certs and not target:
            # (TLS 1.3 hides the certificate: the client's drop right after its Finished, an
            # alert's size and the close, is all there is; a health check closing at once looks
            # the same: said; break-it real s58 #2, judged ok)
            return done("blocked", "tls_failed", f"TLS 1.3: {client_quit_text(quit_, state)}: most likely it refused "
                        f"the server's certificate (another server than the one asked? {OTHER_SERVER_WHY}), or it "
                        f"only tested the connection (a health check); {TLS13_HIDDEN}")
        split = str(row.get("hello_split") or "")
        if hello and not row.get("tls_established") and not unread and not target and HELLO_UNACKED in split \
                and not row.get("tls_alert"):
            # the server acknowledged the ClientHello's first segment(s), never the rest sent again:
            # a path dropping the later segment (newcomer 29 F6), not a server that did not answer
            closed = f"; then the connection closed ({state})" if state in _CLOSED_STATES else ""
            return done("blocked", "tls_failed", f"ClientHello never wholly received: it was {split_text(split)[0]}"
                        f"{_pq_note(split)}{closed}")
        if hello and not row.get("tls_established") and not (unread and row.get("went_on")):
            if (unread or (row.get("payload_cut") and not target)) and not row.get("tls_alert") \
                    and state in _CLOSED_STATES:
                # (the handshake's end not in the bytes inspected: judged from the TCP packets; not
                # inside a CONNECT tunnel, whose bytes start with the proxy's answer)
                judged = _unread_close(row)
                if judged is not None:
                    return done(*judged)
            elif row.get("tls_alert") or state in _CLOSED_STATES:
                # (the server silent for TLS_SILENCE_S or more before the close: what the live line
                # said while it was open, with the time and who closed)
                silence = None if unread else _silent_close(row, target)
                if silence:
                    return done("blocked", "tls_failed", silence)
                why = row.get("tls_alert") or (not unread and not target
                                               and _who_closed(row, state, certs, pinned_rule(rule))) \
                    or (target and _proxy_closed_tunnel(row, state)) \
                    or (target and not unread and certs and str(row.get("tls_close") or "").startswith("client ")
                        and _who_closed(row, state, certs, pinned_rule(rule))) \
                    or f"connection closed ({state})"
                # (inside a tunnel, the client's close after the server's certificate is told as a
                # direct one's: the proxy's answer is no server byte, but a certificate is; break-it
                # s56 v6 #3)
                # (the server asked for a client certificate and aborted after the client's answer:
                # the agent's certificate, not the path; newcomer 36 F3)
                why = _client_cert_refusal(row, why)
                why = _old_version_note(row, why, by_address=rule is not None and rule.opener == PINNED_OPENER)
                if why == ENCRYPTED_ALERT:
                    # (sent after the server's flight, before the client's Finished: most often the
                    # certificate refused, which TLS 1.3 hides; break-it net 33 F3)
                    why += (": an alert a client sends there most often refuses the server's certificate; "
                            + TLS13_HIDDEN)
                cut = (f" (the ClientHello {_cut_by(row)}"
                       ": judged from the TCP packets, which show no handshake that went on)") if unread else ""
                return done("blocked", "tls_failed", f"TLS handshake aborted: {why}{cut}")
            answer = int(row.get("resp_bytes", 0))
            if unread and not row.get("tls_alert") and not row.get("blind_client_next") \
                    and 0 < answer < SMALLEST_SEALED:
                # the connection still open, the server's whole answer shorter than any ServerHello
                # or encrypted record (the alert's bytes cut): a cleartext alert, nothing after it
                return done("blocked", "tls_failed", f"TLS handshake aborted: the server answered the "
                            f"ClientHello with {answer} bytes, a cleartext alert's size, and the client "
                            f"sent nothing more ({_unread_how(row)})")
            # (inside a tunnel: no byte after the proxy's answer, captured or acknowledged)
            silent = (not sproto and _number(row, "tunnel_resp_bytes", int, 0) <= 0) if target \
                else int(row.get("resp_bytes", 0)) == 0
            duration = float(row.get("duration", 0))
            lost = (" (the ClientHello lost by the capture: the server acknowledged it)"
                    if unread and row.get("start_lost") in ("orig", "both") else "")
            if int(row.get("resp_bytes", 0)) == 0 and int(row.get("resp_pkts", 0)) <= 1 \
                    and row.get("orig_resent"):
                # SYN-ACK, then not even an ACK of the ClientHello sent again: dropped on its way (before
                # the silence: a ClientHello never received is no server's silence; break-it 31 F5)
                return done("blocked", "tls_failed",
                            "ClientHello sent again, never acknowledged by the server")
            if silent and duration >= TLS_SILENCE_S:
                return done("blocked", "tls_failed", f"ClientHello not answered for {duration:.1f} s{lost}")
            if silent and duration + _quiet(row) >= TLS_SILENCE_S:
                return done("blocked", "tls_failed",
                            f"ClientHello not answered: no byte from the server for {TLS_SILENCE_S:g} s "
                            f"or more, the capture going on{lost}")
            # the server answered, the client sent its next flight (a second ClientHello after a
            # HelloRetryRequest, its key exchange and Finished…) and the server said nothing since
            waited = _number(row, "tls_wait_from_s", float, -1.0)
            if waited >= 0 and not silent:
                gap = duration - waited
                flight = row.get("tls_wait_after") or "handshake flight"
                if gap >= TLS_SILENCE_S:
                    return done("blocked", "tls_failed", f"TLS handshake not completed: the server sent "
                                f"nothing for {gap:.1f} s after the client's {flight}")
                if gap + _quiet(row) >= TLS_SILENCE_S:
                    return done("blocked", "tls_failed", f"TLS handshake not completed: the server sent "
                                f"nothing for {TLS_SILENCE_S:g} s or more after the client's {flight}, "
                                "the capture going on")
    # mid-stream (partial) bytes need not start on a TLS record boundary: only HTTP is proof there
    cleartext = (cproto and cproto != "tls") or (not cproto and sproto and sproto != "tls")
    # (nor do the first bytes of a payload cut short, a few bytes under an old 68-byte snaplen)
    # (a CONNECT whose tunnel is not in view: its HTTP is the proxy's conversation, not the payload;
    # a request in absolute-form opens none: it is the cleartext to an http:// target, while the
    # proxy itself speaks TLS to an https:// one)
    if absolute:
        in_tunnel = target.startswith("http://")
    else:
        in_tunnel = not target or str(row.get("http_status") or "").startswith("2")
    # (a payload cut by the inspection window, its first bytes whole, still shows its cleartext)
    if tls_rule and cleartext and in_tunnel \
            and ((not partial and not (row.get("payload_cut") and row.get("first_bytes_cut", True)))
                 or "http" in (cproto, sproto)):
        said = _client_cleartext(row, target) if cproto and cproto != "tls" and not partial else ""
        if said:
            return done("unexpected", "not_tls", said)
        return done("unexpected", "not_tls",
                    f"{'HTTP' if 'http' in (cproto, sproto) else 'cleartext'} where TLS is documented")

    stalled = _stall(row) if proto == "tcp" else None
    if stalled is not None:
        return done("blocked", "no_answer", stalled)
    if proto == "tcp" and rule.app_protocol == "tcp" and not partial and not target and state == "RSTR" \
            and int(row.get("resp_bytes") or 0) == 0 and int(row.get("orig_bytes") or 0) > 1 \
            and not _closed_by(str(row.get("history") or ""), False):
        # (the request taken, nothing answered, then reset: an application-aware firewall's
        # refusal by content, which lets the handshake through; break-it s50)
        return done("blocked", "rejected", f"{REQUEST_RESET} ({int(row.get('orig_bytes') or 0):,} bytes): "
                    "an application-aware firewall or proxy refusing the traffic by its content after letting "
                    "the handshake through, or the service refusing the client")
    if unreassembled in ("orig", "both"):
        # (a one-way purpose, multicast or towards the agent: seen sent, but never whole)
        n = int(row["orig_pkts"])
        what = f"its {n} packets were IP fragments of datagrams" if n != 1 else \
            "its packet was an IP fragment of a datagram"
        return done("ok", "", f"{what} never captured whole (fragments dropped on the way?): no receiver "
                    "past this point could reassemble what it carried")
    if target and not absolute and not cproto and not sproto and str(row.get("http_status") or "").startswith("2") \
            and _number(row, "tunnel_resp_bytes", int, 0) <= 0 and not row.get("payload_cut"):
        # (the proxy reached the target's port, nothing of the agent's TLS shown: as a bare TCP
        # handshake is, "port open" in the checklist, report._carried; icept s54 #6)
        return done("ok", "", TUNNEL_EMPTY)
    return done("ok", "", "")


#: how the detail of a ``wrong_direction`` flow opened from outside towards a cloud server's port
#: on a local address starts (:func:`_inbound`; report.readiness advises on such flows apart)
INBOUND = "an inbound connection: opened from outside"
#: how :func:`dp_inbound_detail` starts: a distribution point's port opened towards its own agent
DP_INBOUND = "opened by a distribution point towards its own agent"


def inbound_detail(orig: str, resp: str, port: int, rule_id: str) -> str:
    """The detail of a TCP connection opened from the address ``orig`` (not local) to the local
    address ``resp`` on a cloud server's port ``port`` (rule ``rule_id``): it starts with
    :data:`INBOUND` (an IPv6 ``resp`` in brackets before its port)."""
    return (f"{INBOUND} ({orig}, not a local address) to {endpoint_text(resp, port)}, a local address, on a port "
            f"the cloud server listens on ({rule_id}): the cloud server is never at a local address and never connects to "
            "agents, so this is not an agent's connection to the cloud (a port forwarding to this host, or another "
            "program listening on the port?)")


def agent_inbound_detail(orig: str, resp: str, port: int, rule_id: str, opened: str) -> str:
    """The detail of a TCP connection opened from ``orig`` to ``resp`` on a cloud server's port
    ``port`` (rule ``rule_id``), ``resp`` an agent by ``opened`` (its own earlier connection to
    such a port, the internal ``opened_cloud``: :func:`.inspect._opener_notes`): it starts with
    :data:`INBOUND`, as :func:`inbound_detail`'s, whatever the addresses."""
    return (f"{INBOUND} ({orig}) to {endpoint_text(resp, port)}, an agent's address ({opened}), on a port the "
            f"cloud server listens on ({rule_id}): the cloud server never connects to agents, so this is not an "
            "agent's connection to the cloud (a port forwarding to this host, or another program listening on the "
            "port?)")


#: what the detail of a flow to a distribution point's port refused by an ICMP error from another
#: address than the distribution point's adds (:func:`_refused_on_the_way`); report.readiness
#: advises the device on the way by it
DP_PATH_REFUSED = ("sent by a router or firewall on the way, not by the distribution point: its rules refuse the "
                   "port towards the distribution point")
#: the ICMP errors of a refusal by a rule (administratively prohibited: ICMP 3/9, 3/10, 3/13; ICMPv6
#: 1/1, and 1/5, 1/6 of a policy or reject route)
_ADMIN_REFUSALS = ("(3/9)", "(3/10)", "(3/13)", "(1/1)", "(1/5)", "(1/6)")


def _refused_on_the_way(icmp_text: str, resp: str) -> bool:
    """Whether an ICMP error (an ``icmp_unreachable`` text: ``administratively prohibited (3/13)
    from 192.0.2.1``) is a rule's refusal (:data:`_ADMIN_REFUSALS`) sent from another address than
    the flow's responder ``resp``."""
    what, sep, sender = icmp_text.partition(" from ")
    return bool(sep) and what.rstrip().endswith(_ADMIN_REFUSALS) and sender.split()[0].strip(",;") != resp \
        and not sender.startswith(resp + ",")


def cloud_inbound_detail(orig: str, resp: str, port: int, rule_id: str, name: str) -> str:
    """The detail of a TCP connection opened from ``orig`` to ``resp`` on a cloud server's port
    ``port`` (rule ``rule_id``), ``orig`` an address the capture's DNS gave for the cloud server's
    name ``name`` (the internal ``orig_cloud_name``: :func:`kscc_traffic.names._originator_names`):
    it starts with :data:`INBOUND`, as :func:`inbound_detail`'s, whatever the addresses. The name
    is quoted only when it is a host name (:func:`is_host_name`; a name from the packets)."""
    whose = f"the address {name} was resolved to" if is_host_name(name) else "an address a cloud server's name was resolved to"
    return (f"{INBOUND} ({orig}, {whose} in this capture) to {endpoint_text(resp, port)}, on a port the cloud server "
            f"listens on ({rule_id}): the cloud server never connects to agents, so this is not an agent's connection "
            "to the cloud (a port forwarding to this host, or another program listening on the port?)")


def dp_inbound_detail(orig: str, resp: str, port: int, rule_id: str, opened: str) -> str:
    """The detail of a TCP connection opened from ``orig`` to ``resp`` on a distribution point's
    port ``port`` (rule ``rule_id``), ``resp`` an agent of ``orig`` by ``opened`` (its own earlier
    connection to such a port of ``orig``, the internal ``opened_cloud``:
    :func:`.inspect._opener_notes`, ``it had itself opened …``): it starts with :data:`DP_INBOUND`."""
    return (f"{DP_INBOUND}: from {orig} to {endpoint_text(resp, port)}, which {opened.removeprefix('it ')}, on a "
            f"port the distribution point listens on ({rule_id}): agents open these ports towards their distribution "
            "point, never the other way (it reaches them by UDP 15000 and 15001), so this is no agent's connection "
            "to its distribution point (a distribution point that takes this device for one, or another program?)")


def _inbound(rule, proto: str, target: str, partial: bool, history: str, orig: str, resp: str) -> bool | None:
    """Whether a flow of ``rule`` was opened in the wrong direction from outside: a TCP connection
    whose SYN was captured (``history`` starting with ``S``: the direction seen, not inferred; not
    ``partial``), not through a proxy (no ``target``), to a port of a cloud server's rule
    (``opener`` client_to_cloud) that is no well-known port (>= :data:`WELL_KNOWN_PORTS`: 443 and
    80 are any web server's), whose responder ``resp`` is a local address (:func:`local_address`:
    RFC 1918, RFC 6598, link-local, loopback, ULA: where the cloud server never is) and whose
    originator ``orig`` is an address that is not (the documentation ranges 192.0.2.0/24,
    198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15 are not local: a flow between two of them is
    never told so). None where all but the addresses hold (such a flow may be told by other
    evidence: the internal ``opened_cloud``)."""
    if proto != "tcp" or target or partial or not history.startswith("S") or rule.opener != CLOUD_OPENER \
            or rule.port_lo < WELL_KNOWN_PORTS:
        return False
    return (local_address(resp) and _is_address(orig) and not local_address(orig)) or None


def _resolved_for(row: dict, rule) -> bool:
    """Whether the flow's client looked its responder's address up as a name under ``rule``'s host
    mask just before (``dns_name``): it connected to what the cloud's name gave it, so a local
    responder is the DNS's doing, no connection from outside (break-it s50 #1: an IPv6 agent with a
    global address given a ULA one was told "an inbound connection")."""
    dns_name = str(row.get("dns_name") or "")
    return bool(dns_name and rule.host_mask and not is_ip_literal(dns_name) and under_mask(dns_name, rule.host_mask))


#: what the detail of a failed flow to a local address says when a cloud server's name led there
#: (:func:`local_cloud_note`; report.readiness advises on DNS for such flows)
LOCAL_CLOUD = "a local address, where the cloud server never is"


def local_cloud_note(row: dict, rules: RuleSet) -> str:
    """The note on a flow of a cloud server's rule to a local address (:func:`local_address`) that a
    cloud name led to (:func:`_cloud_name`: the SNI, the name asked or the address's lookup):
    ``eu1.ksc.kaspersky.com was resolved to fd00:5::40, a local address, where the cloud server
    never is: …`` (DNS: the lookup in the capture; else "was asked for at"); '' when no cloud name
    did. Its flow failed (blocked, unexpected): a split DNS, a DNS filter or a hosts file entry
    sends the agent to a local address."""
    cloud = _cloud_name(row, rules)
    if cloud is None:
        return ""
    name, where = cloud
    dns_name = str(row.get("dns_name") or "")
    if where != "DNS" and dns_name and any(under_mask(dns_name, m) for m in _cloud_names(rules)):
        name, where = dns_name, "DNS"    # (the lookup in the capture says more than the SNI)
    resp = str(row["resp_h"])
    how = "was resolved to" if where == "DNS" else "was asked for at"
    return (f"{name} {how} {resp}, {LOCAL_CLOUD}: a split DNS, a DNS filter or a hosts file entry points the "
            "name elsewhere (check what the agent's resolver answers for it, and the hosts file)")


def _is_address(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


#: what the detail of a ``host_mismatch`` flow adds when the connection itself failed (it would be
#: ``blocked`` under its purpose's mask: no answer, a reset, an ICMP error, a TLS handshake aborted):
#: ``; the connection itself failed (no_answer): SYN sent 3 times, no answer`` (report.readiness
#: counts such flows: their advice must not say "nothing to change")
MISMATCH_FAILED = "the connection itself failed"


def _failed_note(row: dict, rules: RuleSet) -> str:
    """What the detail of a ``host_mismatch`` flow adds about the connection itself: when it
    would be ``blocked`` were the name under the mask (:func:`_judge_flow` with ``mask`` False),
    ``; <MISMATCH_FAILED> (<reason>): <its detail>`` (a distribution point's reset told as a plain
    reset: the server is not a distribution point), else '' (answered: nothing to add)."""
    _, verdict, reason, detail = _judge_flow(row, rules, mask=False)
    if verdict != "blocked":
        return ""
    if detail.startswith(DP_RESET):
        detail = "the SYN was answered by a TCP reset"
    return f"; {MISMATCH_FAILED} ({reason.split(',')[0]}): {detail}"


def _attempt_failed(row: dict, icmp_text: str, answered: bool, partial: bool) -> str:
    """What the detail of an ``undocumented_port`` or ``wrong_direction`` flow (no rule, or not
    this rule's direction: :func:`_failed_note` cannot judge it) adds when the connection attempt
    itself failed, as a ``host_mismatch`` one's does (newcomer 33 F5): ``; <MISMATCH_FAILED>
    (<reason>): <how>`` for an ICMP error that says the datagram did not arrive (``icmp_text``,
    :func:`.unreachable.delivery_error`), a SYN refused by a reset (REJ), TCP without an answer
    (S0 and the like) or unicast UDP without a reply (``answered`` False); '' otherwise (answered,
    or ``partial``: begun before the capture)."""
    proto, state = row["proto"], _judged_state(row)
    if partial or (proto == "tcp" and (row.get("acked_unseen") or "") == "resp"):
        return ""   # (begun before the capture; the server's answers acknowledged, not captured)
    if icmp_text and not (proto == "tcp" and state not in _NO_ANSWER_STATES | {"REJ"}) \
            and not (proto == "udp" and answered) and not traceroute_probe(icmp_text):
        return f"; {MISMATCH_FAILED} (icmp_unreachable): {answered_by(icmp_text, False)}"
    if proto == "tcp" and state == "REJ" and _bare_handshake_end(row) not in ("aborted", "reset"):
        return f"; {MISMATCH_FAILED} (rejected): the SYN was answered by a TCP reset"
    if proto == "tcp" and state in _NO_ANSWER_STATES and not answered:
        n = int(row["orig_pkts"])
        how = (f"SYN sent {n} time{'s' if n != 1 else ''}, no answer"
               if state == "S0" and history_core(str(row.get("history") or "")).lstrip("^") == "S" else
               f"connection attempt without an answer ({n} packet{'s' if n != 1 else ''} sent)")
        return f"; {MISMATCH_FAILED} (no_answer): {how}"
    if proto == "udp" and not answered and row["cast"] == "unicast":
        return f"; {MISMATCH_FAILED} (no_answer): UDP request without a reply"
    return ""


#: how the detail of unanswered SYNs that a SYN-ACK from another address or port acknowledged
#: starts (reason ``wrong_source``; report.readiness counts such flows by it)
ANSWERED_ELSEWHERE = "SYN answered only from another address or port"
#: what such an answer means, after the addresses (:func:`answered_elsewhere_detail`)
ANSWERED_ELSEWHERE_WHY = ("a client takes a SYN-ACK only from the address and port it connected to (RFC 9293), "
                          "so for it the SYN went unanswered (it resets such an answer, or its firewall drops "
                          "it): a NAT that translates the destination of the client's packets but not the "
                          "source of the answers (a server on the client's own network reached by its public "
                          "or forwarded address without NAT loopback, or a port forward whose server sends its "
                          "answers past the NAT), a load balancer answering from the server's own address, or "
                          "a server with several addresses answering from another; the port is open there, "
                          "no firewall rule is the fix")


def answered_elsewhere_detail(n: int, other: str, contacted: str) -> str:
    """The detail of a TCP flow whose ``n`` SYNs (no packet back) were acknowledged by a SYN-ACK
    from ``other`` (``192.0.2.21:13000``, the internal ``answered_from``:
    :func:`.inspect._answered_elsewhere`) instead of ``contacted`` (the responder's address and
    port, :func:`~kscc_traffic.addresses.endpoint_text`); starts with :data:`ANSWERED_ELSEWHERE`."""
    return (f"{ANSWERED_ELSEWHERE}: SYN sent {n} time{'s' if n != 1 else ''}; a SYN-ACK acknowledging it came "
            f"from {other}, not from {contacted}, the address and port contacted: {ANSWERED_ELSEWHERE_WHY}")


def _refused_midway(row: dict) -> bool:
    """A TCP flow whose start was not captured (``partial``: the capture began after the
    ClientHello) in which the client answered the server's TLS with a cleartext refusal of its
    certificate (:data:`_CERT_REJECTED`, certificate_expired) and the handshake never completed:
    aborted as surely as one whose ClientHello was seen, since such an alert is only sent during
    a handshake (newcomer 35: judged ok, the checklist saying "verified")."""
    alert = str(row.get("tls_alert") or "")
    return bool(row.get("partial")) and row.get("client_proto") == "tls" and row.get("server_proto") == "tls" \
        and not row.get("tls_established") and alert.startswith("client:") \
        and alert.endswith(_CERT_REFUSALS)


#: the opener of the rules whose server is the network's own (a distribution point, an on-premises
#: Administration Server: §C, TCP 13000…): its certificate is KSC's own, self-signed or issued by the
#: Administration Server, which the agent compares with the one it keeps (klmover -cert, the
#: installation package), not by name: a name it lacks is no sign of interception (break-it s55 dp #1)
PINNED_OPENER = "agent_to_dp"
#: what the detail of a certificate the client refused on such a port says (not a TLS-inspecting
#: proxy's unless an inspection product issued it; break-it s55 dp #3)
PINNED_REFUSED = ("the agent checks the server's certificate against the one it keeps for its Administration "
                  "Server, not by name: this one is not it (the distribution point's or the Administration "
                  "Server's certificate reissued or replaced since the agent was installed, or the agent set up "
                  "for another Administration Server: klmover -address … -cert, or the installation package of "
                  "this server, gives it the right one), or a TLS-inspecting device re-signs the connection")


#: ... and what the detail of such a certificate refused by a close without an alert says
PINNED_SILENT = ("not the one the agent keeps for its Administration Server, which it compares the server's with, not "
                 "by name: reissued or replaced since, or the agent set up for another server?")


def pinned_rule(rule) -> bool:
    """Whether ``rule``'s server certificate is one the agent compares with the one it keeps, not by
    name: the Network Agent's own TLS to its distribution point (:data:`PINNED_OPENER`, app_protocol
    ``tls``: TCP 13000, 13295), not the KSN proxy's HTTPS for the security application (17111,
    ``https``: not documented to pin; fp s55 #2)."""
    return rule.opener == PINNED_OPENER and rule.app_protocol == "tls"


def _interception(row: dict, certs: list[str], target: str, unread: bool,
                  pinned: bool = False) -> tuple[str, str, str] | None:
    """(verdict, reason, detail) of a TLS connection that shows a TLS-inspecting proxy (reason
    ``tls_intercepted``), else None: the server certificate ``certs`` (its names, visible up to
    TLS 1.2) not for the SNI asked, or, without an SNI, for the name the address was resolved
    from (``dns_name``; not inside a CONNECT ``target``, whose dns_name names the proxy); the
    client rejecting the certificate with a cleartext alert (:data:`_CERT_REJECTED`) after a
    ClientHello that was seen (``service`` ssl, or ``unread``: cut by the snaplen); a certificate
    issued by a TLS-inspection product's CA (:func:`inspection_product` of ``cert_issuer``).
    A certificate for the name asked (SNI, else ``dns_name``), or with no name asked any
    certificate, issued by a public CA (:func:`public_ca`) that the client rejects (a certificate
    alert, certificate_expired and certificate_revoked too) is no proxy's: ``blocked``/``tls_failed``,
    the agent's root certificates, clock or revocation check (:func:`_untrusted_public`).

    The verdict is ``blocked`` when the handshake was aborted (:func:`_aborted`: not established,
    and an alert or the connection closed: the client refused the certificate, so the agent cannot
    connect; a client's certificate alert always is), else ``unexpected`` (the client accepted the
    proxy's certificate: the connection works, inspected). Reads ``sni``, ``dns_name``,
    ``cert_issuer``, ``service``, ``tls_alert``, ``tls_established``, ``conn_state``, ``partial``.

    ``pinned``: the rule's server is the network's own (:data:`PINNED_OPENER`, a distribution
    point): a certificate not for the name asked is the rule there, and one the client refuses is
    told as not the certificate the agent keeps (:data:`PINNED_REFUSED`, ``tls_failed``), unless
    an inspection product issued it.

    A certificate for another name refused (the handshake aborted) from no inspection product's CA
    (public, or private and unknown) is ``blocked``/``tls_failed``, :func:`other_server_text`: an
    inspecting proxy mints one for the name asked, so another server answered (break-it real s57
    #4); accepted in the handshake and then dropped unused by the client (``tls_client_quit``: an
    encrypted alert right after its Finished, no application data, the connection closed: a client
    that checks the name after the handshake, curl with OpenSSL; break-it real s58 #2) the same,
    :func:`other_server_text` with :func:`client_quit_text`; accepted and used, it stays
    ``unexpected``/``tls_intercepted``."""
    asked = row.get("sni") or ""
    if asked and is_ip_literal(asked):
        # (an address in the SNI names no host, RFC 6066 3: what a client dialling an address
        # sends; the name the address was resolved from is the one asked, break-it s56 v6 #1)
        asked = ""
    detail = ""
    issuer = row.get("cert_issuer") or ""
    product = inspection_product(issuer) if certs else ""
    if certs and not (pinned and not product):
        dns_asked = "" if target else row.get("dns_name") or ""
        if asked and not any(name_matches(asked, c) for c in certs):
            detail = f"certificate for {certs[0]} presented for {asked}"
        elif not asked and dns_asked and not any(name_matches(dns_asked, c) for c in certs):
            detail = f"certificate for {certs[0]} presented for {dns_asked} (from DNS)"
    resigned = f"issued by {issuer}: {product} re-signs the connection (TLS inspection)"
    if detail and product:
        # (a certificate for another name from an inspection product's CA: its own certificate, a
        # block or login page's: named as a re-signed one is; newcomer 33 F7)
        detail += f", issued by {_bounded(issuer)}: from {product} (TLS inspection)"
    hello = row.get("service") in _SSL_SERVICES or unread or _refused_midway(row)
    alert = row.get("tls_alert") or ""
    named = asked or ("" if target else row.get("dns_name") or "")
    if not detail and not product and hello and certs and named and alert.startswith("client:") \
            and alert.endswith(_CERT_REFUSALS):
        public = public_ca(issuer)
        if public:
            # (the right name, from a public CA: the agent's trust store or clock, not a proxy)
            return "blocked", "tls_failed", _untrusted_public(alert[8:], certs[0], issuer, public,
                                                              str(row.get("cert_dated") or ""))
    if not detail and hello and pinned and not product and alert.startswith("client:") \
            and alert.endswith(_CERT_REFUSALS):
        # (a distribution point's own certificate, seen or not: TLS 1.3 hides it; break-it s55 dp #3)
        unseen = "" if certs else (f" ({TLS13_HIDDEN.split(',')[0]})" if row.get("tls_version") == "TLS 1.3"
                                   else " (the capture does not hold it)")
        return "blocked", "tls_failed", (f"the client rejected the server's certificate ({alert[8:]})"
                                         + (f" for {certs[0]}" if certs else unseen)
                                         + (f" issued by {_bounded(issuer)}" if issuer and certs else "")
                                         + f": {PINNED_REFUSED}")
    if not detail and hello and not certs and alert.startswith("client:") and alert.endswith(_CERT_REFUSALS) \
            and (row.get("tls_version") == "TLS 1.3" or row.get("payload_cut")):
        # (TLS 1.3 encrypts the certificate: a proxy's is not told from the server's own that the
        # agent does not trust, its root missing or its clock wrong: no interception said; break-it
        # net 33 F2, a real TLS 1.3 server whose DigiCert-named root the client lacked was called a
        # proxy; likewise a TLS 1.2 one the capture did not keep, its bytes cut or lost, icept s54 #3)
        hidden = TLS13_HIDDEN if row.get("tls_version") == "TLS 1.3" \
            else CERT_UNREAD if row.get("cut_why_resp") == "limit" and not row.get("start_lost") \
            else cert_unseen_text(row)
        return "blocked", "tls_failed", (f"the client rejected the server's certificate ({alert[8:]}): "
                                         f"{hidden}; {INTERCEPTED_ABORTED}{INTERCEPTED_NO_WAY}")
    if not detail and not product and hello and certs and alert.startswith("client:") \
            and alert.endswith(_CERT_REFUSALS) and public_ca(issuer):
        # (a public CA's certificate refused, no name asked to compare with (an address dialled, no
        # DNS seen): out of date or revoked for the client, the device's clock or revocation check, as
        # with a name (review s56 #4); untrusted, its root missing: a TLS-inspecting proxy signs with
        # its own CA, not a public one (s57))
        return "blocked", "tls_failed", _untrusted_public(alert[8:], certs[0], issuer, public_ca(issuer),
                                                          str(row.get("cert_dated") or ""))
    if not detail and hello and alert.startswith("client:") and alert.endswith(_CERT_REFUSALS):
        # (out of date or revoked for the client: a proxy's certificate so, or the device's clock or
        # revocation check; the certificate from no public CA: break-it s56 v6 #2)
        how = (f"{CERT_DATED}, and from a CA that is no public one: a "
               "TLS-inspecting proxy's?" if alert.endswith(_CERT_EXPIRED) else
               ": revoked, as the client's revocation check found, and from a CA that is no public one: a "
               "TLS-inspecting proxy's?" if alert.endswith(_CERT_REVOKED) else
               ": a TLS-inspecting proxy whose CA the client does not trust?")
        detail = (f"the client rejected the server's certificate ({alert[8:]})"
                  + (f" for {certs[0]}" if certs else "")
                  + (f" {resigned}" if product else
                     # (the issuer named: which device inspects; RFC 4514 text, escaped; newcomer 30 F7)
                     (f" issued by {_bounded(issuer)}" if issuer else "") + how))
        return "blocked", "tls_intercepted", f"{detail}; {INTERCEPTED_ABORTED}{INTERCEPTED_NO_WAY}"
    if not detail and product:
        detail = f"certificate for {certs[0]} {resigned}"
    if not detail:
        return None
    why = _aborted(row)
    if why and not asked and not product and certs and public_ca(issuer) and not target and not unread \
            and row.get("service") in _SSL_SERVICES and not row.get("payload_cut") and not row.get("start_lost"):
        # (the ClientHello read whole: one the snaplen cut may have held an SNI; review s52 #3)
        # (no SNI sent: a server answers with its default certificate, from its public CA; no
        # proof of a proxy: the missing SNI is the finding; break-it s52 v6 #3)
        return "blocked", "tls_failed", (
            f"the ClientHello carried no SNI (server name): the server answered with its default certificate, for "
            f"{certs[0]} (issued by {_bounded(issuer)}, a public CA), not for {row.get('dns_name')} (from DNS), "
            f"and the handshake was aborted ({why}): {NO_SNI_MEANS}")
    quit_ = 0 if why else _number(row, "tls_client_quit", int, 0)
    if (why or quit_ > 0) and not product and not target and certs and detail.startswith("certificate for "):
        # (a certificate for another name, from no TLS-inspection product's CA, refused: an inspecting
        # proxy mints one for the name asked, so the agent most likely reached another server; from a
        # public CA surely; break-it real s57 #4, advised as TLS inspection. Or accepted in the
        # handshake, then the session dropped unused with an alert: a client that checks the name only
        # after the handshake, curl with OpenSSL; break-it real s58 #2)
        no_sni = not asked and not unread and row.get("service") in _SSL_SERVICES and not row.get("payload_cut") \
            and not row.get("start_lost")
        if why:
            return "blocked", "tls_failed", other_server_text(detail, issuer, f"{INTERCEPTED_ABORTED} ({why})", no_sni)
        return "blocked", "tls_failed", other_server_text(
            detail, issuer, client_quit_text(quit_, str(row.get("conn_state") or "")), no_sni, ending=QUIT_NO_WAY)
    if why:
        return "blocked", "tls_intercepted", f"{detail}; {INTERCEPTED_ABORTED} ({why}){INTERCEPTED_NO_WAY}"
    return "unexpected", "tls_intercepted", detail


#: how the detail of a TLS session the client completed and then dropped at once, unused, says it
#: (``tls_client_quit``, :func:`.inspect._sessions_quit`; :func:`client_quit_text`)
CLIENT_QUIT = "the client completed the handshake, then dropped the session unused"
#: ... what such a client does (curl with OpenSSL, and programs built like it, check the
#: certificate's name only after the handshake)
CLIENT_QUIT_WHY = "a client that checks the certificate's name after the handshake, as curl with OpenSSL does"
#: ... how it goes on (in place of :data:`INTERCEPTED_NO_WAY`)
QUIT_NO_WAY = ": the agent cannot use this connection"


def client_quit_text(quit_bytes: int, state: str) -> str:
    """What a TLS session the client dropped right after its handshake says of it
    (:data:`CLIENT_QUIT`): after its Finished the client sent only ``quit_bytes`` bytes, an
    encrypted alert (``tls_client_quit``), no request, and the connection closed (``state``, its
    ``conn_state``); :data:`CLIENT_QUIT_WHY`."""
    return (f"{CLIENT_QUIT}: after its Finished it sent only {quit_bytes} bytes, an encrypted alert, no request, "
            f"and the connection closed ({state}) ({CLIENT_QUIT_WHY})")


#: what the detail of a TLS handshake the client aborted as out of date (certificate_expired) on a
#: certificate from no public CA says of it (``tls_intercepted``: a TLS-inspecting proxy's?); the
#: report advises the agent's clock first for such flows (:func:`.report.dated_count`; break-it
#: real s57 #4)
CERT_DATED = ": out of date for the client (its clock wrong?)"


#: what the detail of a TLS handshake aborted on a certificate for another name than the one asked,
#: issued by no TLS-inspection product's CA, says (``tls_failed``: :func:`other_server_text`; the
#: report counts such flows by it, :func:`.report.cert_counts`, and advises checking where the name
#: leads, not TLS inspection)
OTHER_SERVER = "the agent reached another server than the one it asked for"
#: ... what such a server may be
OTHER_SERVER_WHY = ("a wrong DNS answer or hosts-file entry, a NAT or port forward to another host, a load "
                    "balancer's or web server's default certificate")
#: ... and why not an inspecting proxy
OTHER_SERVER_NOT_PROXY = "a TLS-inspecting proxy presents a certificate for the name asked, made by its own CA"


def other_server_text(detail: str, issuer: str, aborted: str, no_sni: bool = False,
                      ending: str | None = None) -> str:
    """The detail of a TLS handshake aborted (``aborted``: ``the handshake was aborted (client:
    bad_certificate (42))``) on a certificate for another name than the one asked (``detail``:
    ``certificate for www.example.com presented for eu1.ksc.kaspersky.com``) issued by no
    TLS-inspection product's CA (``issuer``, the ``cert_issuer`` text, escaped; :func:`inspection_product`
    found none): from a public CA (:func:`public_ca`) the agent reached another server
    (:data:`OTHER_SERVER`, :data:`OTHER_SERVER_WHY`); from another CA, a private one, most likely so,
    or a device on the path answering with its own certificate (a captive portal, a filter's block
    page); either way not a TLS-inspecting proxy re-signing the connection, which keeps the name
    (:data:`OTHER_SERVER_NOT_PROXY`). ``no_sni``: the ClientHello, read whole, carried no server
    name (the name asked is the one resolved): said too, a server hosting several names answering
    with its default one (:data:`NO_SNI_MEANS`; a public CA's such certificate is told by
    :func:`_interception` before). Ends with ``ending``, by default :data:`INTERCEPTED_NO_WAY`
    (a session the client completed and then dropped, ``aborted`` saying so: :data:`QUIT_NO_WAY`)."""
    public = public_ca(issuer)
    if public:
        said = (f"{detail}, issued by {_bounded(issuer)} (a public CA, {public}, not a TLS-inspection product): "
                f"{OTHER_SERVER} ({OTHER_SERVER_WHY}, a captive portal); {OTHER_SERVER_NOT_PROXY}")
    else:
        by = f", issued by {_bounded(issuer)} (a CA neither public nor a TLS-inspection product's)" if issuer else ""
        said = (f"{detail}{by}: most likely {OTHER_SERVER} ({OTHER_SERVER_WHY}), or a device on the path "
                f"answered with its own certificate (a captive portal, a filter's block page); "
                f"{OTHER_SERVER_NOT_PROXY}")
    if no_sni:
        said += f"; the ClientHello carried no SNI (server name): {NO_SNI_MEANS}"
    return f"{said}; {aborted}{INTERCEPTED_NO_WAY if ending is None else ending}"


#: what a ClientHello without SNI answered by another name's certificate from a public CA means
#: (:func:`_interception`): RFC 6066 §3, the server_name extension tells a server which of its
#: certificates the client wants
NO_SNI_MEANS = ("without the server name a server that hosts several names answers with its default one (RFC "
                "6066 §3): a device on the path that strips the SNI from the ClientHello, or a client that does "
                "not send it (an old TLS library, or something rewriting its connection)")


#: the most characters of a certificate's issuer text a detail quotes (:func:`_bounded`)
MAX_ISSUER_TEXT = 120


def _bounded(issuer: str) -> str:
    """``issuer`` (``cert_issuer``: RFC 4514 text, already escaped) cut to :data:`MAX_ISSUER_TEXT`
    characters, ``…`` ending a cut one (a certificate may carry an issuer of kilobytes)."""
    return issuer if len(issuer) <= MAX_ISSUER_TEXT else issuer[:MAX_ISSUER_TEXT - 1] + "…"


#: the TLS alert certificate_expired (RFC 8446 §6.2): after a public CA's certificate for the
#: name asked, the client's clock (or a stale certificate), :func:`_untrusted_public`
_CERT_EXPIRED = (" (45)",)
#: a client's alert refusing a revoked certificate (certificate_revoked, RFC 8446 §6.2): after a
#: public CA's certificate for the name asked, what its revocation check found (:func:`_untrusted_public`)
_CERT_REVOKED = (" (44)",)
#: every alert by which a client refuses the server's certificate
_CERT_REFUSALS = _CERT_REJECTED + _CERT_EXPIRED + _CERT_REVOKED

#: (marker, CA) of public certificate authorities, as whole words of a ``cert_issuer``'s CN, O or
#: OU (lower case; matched as :func:`inspection_product` does): a certificate for the name asked
#: issued by one is the server's own, not a TLS-inspecting proxy's (:func:`public_ca`)
PUBLIC_CAS: tuple[tuple[str, str], ...] = (
    ("digicert", "DigiCert"), ("geotrust", "DigiCert (GeoTrust)"), ("thawte", "DigiCert (Thawte)"),
    ("rapidssl", "DigiCert (RapidSSL)"), ("globalsign", "GlobalSign"), ("sectigo", "Sectigo"),
    ("comodo", "Sectigo (Comodo)"), ("comodo ca limited", "Sectigo (Comodo)"), ("usertrust", "Sectigo (USERTrust)"),
    ("let's encrypt", "Let's Encrypt"), ("entrust", "Entrust"), ("godaddy", "GoDaddy"), ("go daddy", "GoDaddy"),
    ("starfield", "Starfield"), ("google trust services", "Google Trust Services"), ("amazon", "Amazon"),
    ("identrust", "IdenTrust"), ("certum", "Certum"), ("buypass", "Buypass"), ("quovadis", "QuoVadis"),
    ("actalis", "Actalis"), ("harica", "HARICA"), ("ssl.com", "SSL.com"), ("zerossl", "ZeroSSL"),
    # (more public CAs and the intermediates of public roots, newcomer s62 #3: named private CAs)
    ("microsoft", "Microsoft"), ("cloudflare", "Cloudflare"), ("apple", "Apple"), ("baltimore", "DigiCert (Baltimore)"),
    ("cybertrust", "DigiCert (Cybertrust)"), ("verisign", "DigiCert (VeriSign)"), ("symantec", "DigiCert (Symantec)"),
    ("d-trust", "D-Trust"), ("t-telesec", "Telekom Security"), ("telekom security", "Telekom Security"),
    ("swisssign", "SwissSign"), ("trustasia", "TrustAsia"), ("alphassl", "GlobalSign (AlphaSSL)"),
    ("encryption everywhere", "DigiCert (Encryption Everywhere)"), ("gandi", "Sectigo (Gandi)"),
    ("network solutions", "Network Solutions"), ("secom", "SECOM"), ("certigna", "Certigna"),
    ("trustwave", "Trustwave"), ("securetrust", "Trustwave (SecureTrust)"), ("affirmtrust", "Entrust (AffirmTrust)"),
    ("emsign", "eMudhra (emSign)"), ("globaltrust", "GLOBALTRUST"), ("izenpe", "Izenpe"), ("twca", "TWCA"),
    ("chunghwa telecom", "Chunghwa Telecom"), ("naver", "NAVER"), ("hongkong post", "Hongkong Post"),
)


def public_ca(issuer: str) -> str:
    """The public certificate authority that issued a certificate (:data:`PUBLIC_CAS`), from its
    issuer text (``cert_issuer``, RFC 4514): a marker found as whole words in its CN, O or OU;
    '' when none is, or when the issuer also names a TLS-inspection product
    (:func:`inspection_product`). (Only the issuer's text is read: a proxy copying a public CA's
    name cannot be told apart without checking the signature.)"""
    if not issuer or inspection_product(issuer):
        return ""
    text = " | ".join(v.lower() for v in _ISSUER_NAMES.findall(issuer))
    return next((ca for marker, ca in PUBLIC_CAS
                 if re.search(r"(?<![a-z0-9])" + re.escape(marker) + r"(?![a-z0-9])", text)), "")


#: how the detail of a handshake aborted by the client on a public CA's certificate for the name
#: asked starts (``tls_failed``: the agent's root certificates or clock, :func:`_untrusted_public`)
UNTRUSTED_PUBLIC = "the client rejected the server's own certificate"


def _expired_why(dated: str) -> str:
    """Why a client refused a public CA's certificate as out of date (certificate_expired), from
    the internal ``cert_dated`` column (:func:`kscc_traffic.inspect._cert_dated`: how the
    capture's clock at the flow's start compares with the certificate's validity; '' not read):
    the capture's clock outside the validity says the clock is wrong (the agent's, when captured on
    it); inside it, the agent's own clock or another certificate of the chain."""
    parts = str(dated).split()
    if len(parts) == 4 and parts[0] == CERT_DATED_BEFORE and parts[3] < "2000":
        # (review s60 #7: a 1970 time is a clock never set, or a capture converted without its times)
        return (f"the capture's clock read {parts[3]}, before the certificate's start (valid {parts[1]} to "
                f"{parts[2]}): timestamps that early come from a device whose clock was never set, or from a "
                "capture converted without its times: check the agent's own clock and time synchronisation")
    if len(parts) == 4 and parts[0] in (CERT_DATED_AFTER, CERT_DATED_BEFORE):
        when = "after its end" if parts[0] == CERT_DATED_AFTER else "before its start"
        return (f"the capture's clock read {parts[3]}, {when} (valid {parts[1]} to {parts[2]}): the clock of the "
                "device that captured it, the agent's if captured on it, is wrong most likely (check the device's "
                "clock and time synchronisation)")
    if len(parts) == 4 and parts[0] == CERT_DATED_WITHIN:
        return (f"by the capture's clock ({parts[3]}) the certificate was valid ({parts[1]} to {parts[2]}): if "
                "captured on another device, the agent's own clock is wrong most likely (check it and its time "
                "synchronisation); if captured on the agent, another certificate of its chain was out of date, or "
                "the agent's TLS reads another clock")
    return ("the agent's system time is probably wrong (check the device's clock and time "
            "synchronisation), or the certificate was out of date")


def _untrusted_public(alert: str, name: str, issuer: str, ca: str, dated: str = "") -> str:
    """The detail of a TLS handshake the client aborted with a certificate alert (``alert``,
    ``unknown_ca (48)``...) after a certificate for the name asked (``name``, its first) issued by
    a public CA (``issuer``, the ``cert_issuer`` text; ``ca`` from :func:`public_ca`): the agent's
    trust store lacks the root, or its clock is wrong (certificate_expired: :func:`_expired_why`
    of ``dated``, the internal ``cert_dated`` column); starts with :data:`UNTRUSTED_PUBLIC`."""
    digicert = ca.startswith("DigiCert")
    if alert.endswith("(45)"):
        why = _expired_why(dated)
    elif alert.endswith("(44)"):
        # (break-it s56 v6 #2: what the device's revocation check got, a CRL or an OCSP answer)
        why = (f"the agent's device found it revoked by {ca}'s revocation list or OCSP answer: a CRL it keeps "
               "out of date, or an answer a proxy or filter gave in the CA's place (check what its revocation "
               "check fetched)")
    else:
        why = (f"the agent's device does not trust {ca}'s root: check its root certificates"
               + (" (DigiCert Global Root G2 among them)" if digicert else "") + " and its system time")
    if digicert:
        why += ("; the page documents TCP 80 to *.digicert.com for checking the validity of KSC certificates "
                "(CRL, OCSP): allow it too")
    return (f"{UNTRUSTED_PUBLIC} ({alert}) for {name}, issued by {issuer} (a public CA, {ca}, not a "
            f"TLS-inspection product): {why}; {INTERCEPTED_ABORTED}{INTERCEPTED_NO_WAY}")


#: what the detail of a TLS 1.3 handshake the client ended on the server's certificate says (the
#: certificate encrypted: whose it was cannot be seen; report.readiness counts such ``tls_failed``
#: flows, by this text, and advises on both possibilities)
TLS13_HIDDEN = ("TLS 1.3 encrypts the certificate, so the capture cannot show whose it was: a TLS-inspecting "
                "proxy's, whose CA the agent does not trust, or the server's own, whose root the agent's device "
                "lacks (or its system time is wrong)")
#: the same where TLS 1.2 or older sends the certificate in the clear but the capture did not keep
#: it (cut by the snaplen or the inspection window, or lost by the capture; icept s54 #3: it was
#: called a proxy's); report.readiness counts it with :data:`TLS13_HIDDEN`
CERT_UNSEEN = "the server's certificate is not in the bytes captured"
#: what follows :data:`CERT_UNSEEN` and :data:`CERT_UNREAD`'s own words: whose it may have been
_CERT_WHOSE = ("a TLS-inspecting proxy's, whose CA the agent does not trust, or the server's own, whose root the "
               "agent's device lacks (or its system time is wrong)")


def cert_unseen_text(row: dict) -> str:
    """:data:`CERT_UNSEEN` with why, and whose it may have been: ``(cut by the snaplen)``, ``(lost
    by the capture)`` (internal ``start_lost``, ``cut_why`` "gap"), both when not known."""
    why = row.get("cut_why_resp") or ""      # (the server's side: its certificate)
    cause = "lost by the capture" if row.get("start_lost") or why == "gap" else \
        "cut by the snaplen" if why == "snaplen" else "cut by the snaplen, or lost by the capture"
    return f"{CERT_UNSEEN} ({cause}), so the capture cannot show whose it was: {_CERT_WHOSE}"


#: the same where the capture holds the certificate, past the segments inspected (a flight in
#: more than :data:`~kscc_traffic.streams.MAX_SEGMENTS` small segments: internal ``cut_why``
#: "limit"); report.readiness counts it with :data:`TLS13_HIDDEN` too
CERT_UNREAD = (f"the server's certificate is past what is inspected of its flight (its first {MAX_SEGMENTS} segments, "
               f"at most {MAX_BYTES // 1024} KiB), so whose it was is not read here (Wireshark shows it where the "
               f"capture holds it): {_CERT_WHOSE}")


#: how the detail of a TLS handshake the server aborted after asking for a client certificate in
#: cleartext (a TLS <= 1.2 CertificateRequest) names the request (:func:`_client_cert_refusal`);
#: report.readiness counts such ``tls_failed`` flows by this text, and those whose detail holds
#: :data:`CERT_REQUIRED`, and advises the agent's own certificate, not TLS inspection
CLIENT_CERT_ASKED = "the server asked for a client certificate (CertificateRequest)"
#: the TLS 1.3 alert of a server that asked for a client certificate and got none (RFC 8446
#: §4.4.2.4, alert 116), as the details name it (the alert's text, or the guess of a TLS 1.3
#: refusal after the client's Finished: inspect._tls13_refusals)
CERT_REQUIRED = "certificate_required"
#: what the detail adds to a server's certificate_required alert (the request itself not seen)
CERT_REQUIRED_MEANS = ": the server requires a client certificate, and the client sent none it accepts"


def _client_cert_refusal(row: dict, why: str) -> str:
    """``why`` (how an aborted TLS handshake ended, for the detail ``TLS handshake aborted: …``)
    told as a refusal of the client's certificate where the flow shows one (newcomer 36 F3: such
    handshakes read as TLS inspection): the server asked for a client certificate in cleartext
    (internal column ``tls_client_cert``, :data:`~kscc_traffic.inspect.CLIENT_CERT_NONE` /
    ``_SENT`` / ``_UNSEEN``: a TLS <= 1.2 CertificateRequest and the client's Certificate
    answering it) and then ended the handshake, with its cleartext alert (``tls_alert``
    ``server: …``) or, without any alert, by closing or resetting the connection first
    (``why`` starting ``the server``); or a server's certificate_required alert (TLS 1.3: its
    request encrypted). Else ``why`` as it is."""
    alert = str(row.get("tls_alert") or "")
    answer = row.get("tls_client_cert") or ""
    if alert.startswith("server: ") and CERT_REQUIRED in alert and not answer:
        return f"{alert}{CERT_REQUIRED_MEANS}"
    if answer not in (CLIENT_CERT_NONE, CLIENT_CERT_SENT, CLIENT_CERT_UNSEEN):
        return why
    if alert.startswith("server: "):
        then, refused = f"the server then aborted: {alert[8:]}", alert[8:]
    elif not alert and why.startswith("the server "):
        then, refused = f"then {why}", why               # ("the server closed the connection (FIN, SF) …")
    else:
        return why
    if answer == CLIENT_CERT_NONE:
        return f"{CLIENT_CERT_ASKED} and the client sent none; {then}"
    if answer == CLIENT_CERT_SENT:
        return f"{CLIENT_CERT_ASKED}, the client sent one and the server refused it: {refused}"
    return f"{CLIENT_CERT_ASKED}, the client's answer not captured; {then}"


#: what the detail of an intercepted TLS connection whose handshake was aborted adds (verdict
#: ``blocked``: the client refused the inspecting proxy's certificate, no connection was made)
INTERCEPTED_ABORTED = "the handshake was aborted"
#: ... and how it goes on after the way it was aborted
INTERCEPTED_NO_WAY = " and never completed: the agent cannot connect this way"


def _aborted(row: dict) -> str:
    """How a TLS handshake seen from its ClientHello (``service`` ssl, not ``partial``) was
    aborted: its alert (``tls_alert``), else ``connection closed (<conn_state>)`` when the
    connection closed (a FIN or RST: :data:`_CLOSED_STATES`) without the handshake completing
    (``tls_established`` false); '' when it completed, or the connection may still be open."""
    if row.get("tls_established") or row.get("partial"):
        return ""
    alert = str(row.get("tls_alert") or "")
    if alert:
        return alert
    state = str(row.get("conn_state") or "")
    return f"connection closed ({state})" if state in _CLOSED_STATES else ""


#: the detail of a TCP flow that is one packet with SYN and FIN or RST set together, nothing back
#: (history ``Q``): not a connection attempt a firewall answers, not judged
INVALID_SYN = ("one packet with SYN and FIN or RST set together (an invalid combination: a scan, a probe "
               "or a damaged packet), nothing came back: not judged")

#: ... and when the responder answered it with resets only (Zeek's ``Qr``: no handshake, nothing
#: shown open; a stack drops such a packet on a listening port, or resets it on a closed one)
INVALID_SYN_RESET = ("a packet with SYN and FIN or RST set together (an invalid combination: a scan, a probe or a "
                     "damaged packet), answered by a reset only: no handshake took place, so the port is shown "
                     "neither open nor refused: not judged")
#: the ``history`` (``^`` left out) of such probes: the originator's ``Q`` packets, the responder's
#: resets if any
_INVALID_PROBE = re.compile(r"Q+r*\Z")
#: ... and of a flow that began with a SYN (not ``partial``) whose originator's packets set SYN,
#: FIN and RST all together (a "Christmas tree" probe): Zeek's ``update_history`` writes ``I`` for
#: any packet with FIN and RST, whatever else is set, so such a flow's history is ``I`` (``Ir``);
#: without a SYN (``partial``) ``I`` is a FIN+RST closing a connection whose start was not captured
_INVALID_XMAS = re.compile(r"I+r*\Z")
#: the ``history`` (``T``/``W`` and ``^`` left out) of a SYN whose originator then sent a FIN+RST
#: packet (Zeek's ``I``; a "Christmas tree" SYN+FIN+RST too), nothing from the responder: Zeek's
#: OTH (the ``I`` keeps it from RSTOS0), an attempt without an answer as ``SR`` is
_SYN_THEN_FIN_RST = re.compile(r"S+I+\Z")
#: ... and of a SYN answered only by the responder's bare ACK (no SYN-ACK, no reset): Zeek's
#: ``Sa`` S0, ``SaR`` RSTOS0, ``SaF`` SH, ``SaFR`` OTH when the originator then gave up with a FIN
#: or RST (:data:`ACK_ONLY_ANSWER` when the ACK acknowledges the SYN)
_ACK_ONLY = re.compile(r"S+a[FR]*\Z")
#: ... and of a SYN whose only answer set SYN, FIN and RST together (the responder's ``i``; the
#: originator's ACK or RST to it at most)
_SYN_FIN_RST_ANSWER = re.compile(r"S+i[AR]*\Z")


def _unusual_handshake_kind(history: str) -> int:
    """Which unusual handshake a flow's ``history`` (``^`` and ``T``/``W`` allowed) shows: 1 a SYN
    its originator ended with FIN+RST (:data:`_SYN_THEN_FIN_RST`), 2 a SYN answered only by bare
    ACKs (:data:`_ACK_ONLY`), 3 a SYN answered by SYN+FIN+RST (:data:`_SYN_FIN_RST_ANSWER`), else 0 (a part of :func:`_verdict_keys`' key, with whether a
    SYN-ACK answered, which :func:`_judged_state` reads)."""
    core = history_core(history).lstrip("^")
    for k, rx in enumerate((_SYN_THEN_FIN_RST, _ACK_ONLY, _SYN_FIN_RST_ANSWER), 1):
        if rx.match(core):
            return k
    return 0


#: the detail of a SYN answered only by bare ACKs acknowledging it, never by a SYN-ACK nor a reset
#: (report.rejected_kind tells it by its start)
ACK_ONLY_ANSWER = ("the SYN was answered only by bare ACKs acknowledging it, never by a SYN-ACK: "
                   "the server did not accept the connection; a device on the way answered in its place (a "
                   "firewall's, IPS's or DDoS filter's challenge ACK, or a SYN proxy that never completed the "
                   "handshake), and the client drops such an ACK (RFC 9293 §3.10.7.3): no connection was made")

#: how the detail of a flow to a distribution point's port (§C) whose server has a name of the
#: cloud starts (``host_mismatch``: report.readiness counts such flows and advises on them)
ONPREM_PORT = "the agent uses an on-premises Administration Server/distribution point port against the cloud server"

#: networks of local addresses (RFC 1918, shared address space RFC 6598, link-local, loopback,
#: unique local IPv6): a distribution point is there; the cloud server never is
_LOCAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8",
    "fc00::/7", "fe80::/10", "::1/128"))


#: source addresses no router forwards towards the Internet: (network, what the note calls it)
_UNROUTED_SOURCES = ((ipaddress.ip_network("fc00::/7"), "a unique local IPv6 address (fc00::/7)"),
                     (ipaddress.ip_network("fe80::/10"), "a link-local IPv6 address (fe80::/10)"),
                     (ipaddress.ip_network("169.254.0.0/16"), "a link-local IPv4 address (169.254.0.0/16: the "
                                                              "device got no DHCP lease?)"))


def unrouted_source_note(orig: str, resp: str) -> str:
    """What the detail of SYNs without an answer adds when they were sent from an address no
    router forwards towards the Internet (:data:`_UNROUTED_SOURCES`: a unique local or link-local
    IPv6 address, an IPv4 link-local one) to a global one (not :func:`local_address`): the answer
    has no way back unless a NAT66/NPTv6 gateway translates the source (break-it s56 v6 #6); ''
    otherwise."""
    try:
        a, b = ipaddress.ip_address(orig), ipaddress.ip_address(resp)
    except ValueError:
        return ""
    if a.version != b.version or local_address(resp) or not b.is_global and not _documentation(b):
        return ""
    what = next((text for net, text in _UNROUTED_SOURCES if net.version == a.version and a in net), "")
    if not what:
        return ""
    return (f"; the agent sent them from {orig}, {what}, which the Internet does not route: the answer has no way "
            "back unless a NAT66/NPTv6 gateway translates it (check the device's global address and its source "
            "address selection)" if a.version == 6 else
            f"; the agent sent them from {orig}, {what}, which no router forwards: the answer has no way back "
            "(check the device's address configuration)")


def _documentation(a) -> bool:
    """Whether ``a`` (an ipaddress address) is in a documentation or benchmarking range
    (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15, 2001:db8::/32), which stand
    for global addresses in examples and tests."""
    return any(a in n for n in _DOC_NETWORKS if n.version == a.version)


_DOC_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
                                                        "198.18.0.0/15", "2001:db8::/32"))


@functools.lru_cache(maxsize=1 << 14)
def local_address(text: str) -> bool:
    """Whether an address text (``resp_h``) is in a local network (:data:`_LOCAL_NETWORKS`, an
    IPv4-mapped IPv6 address by its IPv4); False for anything not an address. (Cached: a batch
    asks for the same few distribution points' addresses once per flow.)"""
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return False
    if a.version == 6 and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    return any(a in n for n in _LOCAL_NETWORKS if n.version == a.version)


def _cloud_names(rules: RuleSet) -> list[str]:
    """The host masks of the rules for the cloud's TLS servers (opener ``client_to_cloud``, TLS
    or HTTPS: ``*.ksc.kaspersky.com``)."""
    return [r.host_mask for r in rules.rules
            if r.opener == "client_to_cloud" and r.app_protocol in ("tls", "https") and r.host_mask]


def _cloud_name(row: dict, rules: RuleSet) -> tuple[str, str] | None:
    """(name, where it came from) of the first name of a flow that is the cloud Administration
    Server's: a host name under a cloud server's mask (:func:`_cloud_names`: ``*.ksc.kaspersky.com``);
    the names looked at are those the client asked for: the SNI, the name asked (``server_name``:
    HTTP Host, DNS) and the name the address was resolved from (``dns_name``); None when none is.
    Not the server certificate's names (what a distribution point presents is its own business),
    nor other kaspersky.com names (a distribution point's KSN proxy ports may carry KSN's)."""
    masks = _cloud_names(rules)
    sni = row.get("sni") or ""
    for name, where in ((sni, "SNI"), (row.get("server_name") or "", "name asked"),
                        (row.get("dns_name") or "", "DNS")):
        n = name.lower().rstrip(".")
        if not n or is_ip_literal(n) or not is_host_name(n):
            continue
        if any(under_mask(n, m) for m in masks):
            if where == "name asked":
                where = "DNS" if n == (row.get("dns_name") or "").lower().rstrip(".") else "HTTP Host"
            return name, where
    return None


def _onprem_detail(proto: str, port: int, cloud: tuple[str, str], rules: RuleSet) -> str:
    """The detail of a flow to a distribution point's port whose server has a cloud name
    (``cloud``: :func:`_cloud_name`): it starts with :data:`ONPREM_PORT` and names the cloud's
    ports for agents (the first cloud TLS rule's, ``agent_connection``)."""
    name, where = cloud
    agent = next((r for r in rules.rules if r.opener == "client_to_cloud" and r.app_protocol == "tls"
                  and r.host_mask), None)
    ports = (f"{agent.transport.upper()} {agent.port_text} ({agent.id})" if agent is not None
             else "the ports its rules document")
    return (f"{ONPREM_PORT} ({proto.upper()} {port}): {name} (from {where}) is a Kaspersky cloud name, not a "
            f"distribution point; the cloud server takes agents on {ports}: a setting left over from an "
            "on-premises Kaspersky Security Center, after a migration?")


#: how the detail of a TLS handshake whose server's first flight stopped short (internal column
#: ``flight_cut``: :func:`.inspect._flight_lost`) says why; it holds the report's ``MTU_HOLE``
#: words, so the advice is the path MTU's, not a certificate's
FLIGHT_LOST = ("the rest was lost on the way ({had}): packets lost, most often full-size segments lost, a "
               "path-MTU black hole? (ICMP 'fragmentation needed'/'packet too big' filtered)")


def _who_closed(row: dict, state: str, certs: list[str], pinned: bool = False) -> str:
    """How a TLS handshake without an alert ended on a closed connection, for the detail
    ``TLS handshake aborted: …``: who sent the first FIN or RST and at what point of the handshake
    (internal columns ``tls_close``, ``tls_close_wait_s``: :func:`.inspect._close_waits`, a wait
    shorter than :data:`TLS_SILENCE_S` here, and ``resp_bytes``); ``state`` is the conn_state
    quoted; ``certs`` the server certificate's names (shown when the server's flight held one).
    '' when ``tls_close`` says nothing (the caller then says ``connection closed (SF)``).
    Whether the server had sent a byte is read before the close (``tls_close_served``; a table
    without it: ``resp_bytes``): bytes it sent only after the client's reset answered nothing
    the client had (break-it 23 F5). ``pinned``: the server is the network's own
    (:data:`PINNED_OPENER`): a certificate refused silently is said as not the one the agent keeps
    (:data:`PINNED_SILENT`), not a TLS-inspecting proxy's, unless an inspection product issued it.
    A certificate seen in a server's flight whose bytes were never acknowledged whole (``mtu_hint``
    about the server's bytes: a path-MTU black hole, the hint appended to the detail) gets no guess
    at why it was refused: the client never had it (break-it real s57 #6)."""
    close = str(row.get("tls_close") or "").split()
    if len(close) < 2 or close[0] not in ("client", "server"):
        return ""
    who, how = close[0], close[1]
    other = "server" if who == "client" else "client"
    did = f"the {who} {'reset' if how == 'RST' else 'closed'} the connection ({how}, {state})"
    wait = _seconds(row, "tls_close_wait_s")
    served = _served_before_close(row)
    after = ""
    if close[2:] == ["answered"]:
        after = (f", and the {other} sent more after it" if served or who == "server" else
                 ", and the server sent its first bytes only after it")
    if not served:
        then = f" {_close_wait_text(wait)} s after the ClientHello," if wait >= 0 else ""
        return f"{did}{then} before the server sent a byte{after}"
    if wait >= 0:
        return f"{did} {_close_wait_text(wait)} s after the client's next flight, which the server had not answered{after}"
    if who == "client" and after and _close_served(row) > 0:
        # (the server's answer went on after the client's close: the client did not have it all,
        # its certificate maybe not yet)
        return (f"{did} while the server's answer was still coming ({_close_served(row):,} bytes of it before "
                f"the {how}, more after it), sending nothing itself, no alert either")
    if who == "client" and row.get("flight_cut"):
        # (the server's first flight stopped short where the client is, and the client gave up
        # waiting for the rest: lost on the way, not a certificate refused; break-it s55 tls #1;
        # a certificate of it seen: the client had that, not the rest, review s55 #5)
        had = (f"the client had its certificate, for {certs[0]}, not the rest of the flight" if certs else
               "the client never had the rest of the server's flight")
        return f"{did} {row.get('flight_cut')}, sending nothing itself, no alert either: {FLIGHT_LOST.format(had=had)}"
    if who == "client" and row.get("tls_hrr"):
        # (TLS 1.3: the server asked for the ClientHello again, with a key share of another group
        # or with its cookie, RFC 8446 §4.1.4: not said which, the HelloRetryRequest not parsed further)
        return (f"{did} after the server's HelloRetryRequest, sending no second ClientHello, no alert either{after}: "
                "the server asked for the ClientHello again (with a key share of another group, or its cookie: "
                "RFC 8446 §4.1.4), and the "
                "client (or a middlebox on the way) would not go on")
    if who == "client":
        issuer = str(row.get("cert_issuer") or "") if certs else ""
        # (the issuer named: which device inspects, or the public CA whose root the agent lacks;
        # break-it net 33 F1: the detail of a silent refusal named no issuer)
        by = f" issued by {_bounded(issuer)}" if issuer else ""
        flight = (f"the server's last flight (its certificate, for {certs[0]}{by}, seen)" if certs
                  else "the server's last answer")
        why = ""
        if certs and str(row.get("mtu_hint") or "").startswith("the server's "):
            # (the server's flight was never acknowledged whole, segments of it lost on the way, a
            # path-MTU black hole: the client never had the certificate the capture holds, so its
            # silence refused none; the hint, appended, says so; break-it real s57 #6)
            pass
        elif certs:
            public = public_ca(issuer)
            named = row.get("sni") or row.get("dns_name") or ""
            why = (": how an agent refuses a certificate it does not trust without saying so ("
                   + (f"a public CA's, {public}, for the name asked: the agent's root certificates or system "
                      "time?)" if public and named and any(name_matches(named, c) for c in certs) else
                      f"{PINNED_SILENT})" if pinned and not inspection_product(issuer) else
                      "a TLS-inspecting proxy's?)"))
        elif row.get("tls_version") == "TLS 1.3" and not after and not row.get("mtu_hint"):
            # (the server's flight held its certificate, encrypted: the client sent no Finished; not
            # when segments of that flight were lost on the way, a path-MTU black hole: the client
            # may have waited for them; a distribution point's: not the one the agent keeps)
            flight = "the server's last flight"
            why = (f": how an agent refuses a certificate it does not trust without saying so ({PINNED_SILENT})"
                   if pinned else
                   f": how an agent refuses a certificate it does not trust without saying so; {TLS13_HIDDEN}")
        return f"{did} after {flight}, sending nothing after it, no alert either{after}{why}"
    return f"{did} after its own answer to the ClientHello, before the client's next flight{after}"


#: how the detail of a connection whose client (originator) sent cleartext where a rule documents
#: TLS starts (``not_tls``: the client's own bytes, not a server's or proxy's answer)
CLIENT_CLEARTEXT = "the client sent cleartext, not a TLS ClientHello, where TLS is documented"


def _client_cleartext(row: dict, target: str = "") -> str:
    """The detail of a TCP connection to a TLS purpose whose client's first bytes are cleartext
    (``client_proto`` http or other): it starts with :data:`CLIENT_CLEARTEXT` and quotes those
    bytes (internal columns ``client_head``, escaped text, or ``client_binary``, the first 8 in
    hex: :func:`.inspect._first_bytes_text`); '' when neither was read (the start of the client's
    stream not captured). ``target``: the bytes were inside the tunnel of ``CONNECT <target>``
    (after the proxy's 2xx), which the detail names, with the HTTP status of the answer in the
    tunnel (``tunnel_http_status``) when one was read."""
    head = str(row.get("client_head") or "")
    binary = str(row.get("client_binary") or "")
    what = "an HTTP request" if row.get("client_proto") == "http" else "bytes that are no valid TLS record nor HTTP"
    if head:
        quoted = f"\"{head}\""
    elif binary:
        quoted = f"first bytes {binary}"
    else:
        return ""
    where = ""
    if target:
        answer = str(row.get("tunnel_http_status") or "")
        where = (f", inside the tunnel of CONNECT {target} through the proxy "
                 f"{endpoint_text(row['resp_h'], int(row['resp_p']))}"
                 + (f" (answered HTTP {answer} in it)" if answer else ""))
    return (f"{CLIENT_CLEARTEXT}: {what}, {quoted}{where} (not an agent's TLS: another program, or "
            "something on the way rewriting the agent's connection)")


#: how the detail of a TCP connection to a TLS purpose whose client sent only the first 1-4 bytes
#: of a TLS record header (``16``, ``16 03 01``…) and nothing more goes on after "the client
#: sent only …" (:func:`_record_start`)
TLS_RECORD_START = "the start of a TLS record header, too few bytes to tell whether a ClientHello would follow"


#: what the detail of a client whose whole stream is a TLS handshake record never finished (its
#: 5-byte header alone, or a ClientHello cut short by the client) says after the bytes sent
TLS_RECORD_CUT = "the record never finished, a ClientHello cut short by the client (not by the capture)"


#: how the note on a server whose whole answer to a ClientHello is 1-4 bytes starting a TLS
#: record header (``16``, ``15 03 03``…) goes on after "the server answered with only …"
TLS_RECORD_START_SERVER = "the start of a TLS record header, too few bytes to tell what the server would send"


def _record_start(row: dict, state: str) -> tuple[str, str, str]:
    """(verdict, reason, detail) of a TCP connection to a TLS purpose whose client's whole stream
    is 1-4 bytes starting a TLS record header (internal column ``client_binary``: those bytes in
    hex, set so by :func:`.inspect._deep_look`), the server having sent no byte. Not ``not_tls``:
    such bytes are no cleartext (Wireshark shows a segment of a PDU never finished, Zeek no
    service). Closed by either side (internal column ``tls_close``: who, FIN or RST):
    ``blocked``/``tls_failed`` ``TLS handshake aborted: …``, as a ClientHello so closed is;
    still open: ``ok``, the detail saying what was sent (:data:`TLS_RECORD_START`). The same for a
    whole stream that is a TLS handshake record never finished, its 5-byte header alone or more
    but less than the body it announces (``client_binary`` then as
    :func:`.inspect.tls_record_cut_text`; :data:`TLS_RECORD_CUT`), unless Zeek-like parsing named
    the flow ``ssl`` (enough of the ClientHello read: judged as a ClientHello)."""
    got = str(row.get("client_binary") or "")
    cut = tls_record_cut_parse(got)
    if cut is None:
        n = len(got.split())
        sent = f"the client sent only {n} byte{'s' if n != 1 else ''} ({got}), {TLS_RECORD_START}"
    elif cut[1] == 5:
        sent = (f"the client sent only the header (5 bytes: {cut[0]}) of a TLS handshake record announcing "
                f"{cut[2]:,} bytes, none of its body: {TLS_RECORD_CUT}")
    else:
        sent = (f"the client sent only {cut[1]:,} bytes ({cut[0]}) of a TLS handshake record of {cut[2] + 5:,} bytes "
                f"(a {cut[2]:,}-byte body after its 5-byte header): {TLS_RECORD_CUT}")
    close = str(row.get("tls_close") or "").split()
    if len(close) >= 2 and close[0] in ("client", "server"):
        who, how = close[0], close[1]
        did = f"the {who} {'reset' if how == 'RST' else 'closed'} the connection ({how}, {state})"
        return "blocked", "tls_failed", f"TLS handshake aborted: {did}; {sent}, and the server sent no byte"
    if state in _CLOSED_STATES:
        return "blocked", "tls_failed", f"TLS handshake aborted: connection closed ({state}); {sent}"
    return "ok", "", f"{sent}; nothing more came from either side (the connection still open)"


#: how the detail of a DNS query whose answers came back only as IP fragments of datagrams never
#: captured whole starts (:func:`_lost`; its words and a count only: the report's DNS advice reads it)
DNS_LOST_FRAGMENTS = re.compile(r"^DNS query without an answer: the (?:packet that came back was an IP fragment of "
                                r"an answer|[\d,]+ packets that came back were IP fragments of answers) never "
                                r"captured whole")


#: TLS versions below what a current client offers (RFC 8996 deprecates TLS 1.0 and 1.1)
OLD_TLS_VERSIONS = ("SSL 3.0", "TLS 1.0", "TLS 1.1")


#: bytes of a cleartext TLS alert record (5-byte header, level, description)
ALERT_RECORD_BYTES = 7


#: what the detail of a TLS handshake the server's side ended with protocol_version says (after the
#: alert, ": " before it): no version offered was one it accepts; the report advises the agent's TLS
#: settings or an old device answering in the server's place, not TLS inspection (break-it real s57 #7)
VERSION_REFUSED = "the server's side accepts none of the TLS versions the client offered"
#: ... and what the detail of one the server's side ended with handshake_failure or
#: insufficient_security answering the ClientHello itself (with a server name) says: none of the
#: cipher suites, groups or signature algorithms offered was one it accepts; the report advises
#: the agent's TLS policy first, as for the versions (newcomer s58 #2)
SUITES_REFUSED = ("the server's side accepts none of the cipher suites, key-exchange groups or signature algorithms "
                  "the client offered")
#: ... followed (", " before it) by what the ClientHello offered, read from the internal column
#: ``tls_offer`` (:func:`kscc_traffic.inspect._tls_offers`): a current, unrestricted offer (the report
#: then advises what answered in the server's place first, not the agent's TLS policy) or a narrow
#: one (the agent's policy first); neither when the ClientHello was not read whole (newcomer s59 #3)
OFFER_CURRENT_SAID = "though the offer is a current one"
OFFER_NARROW_SAID = "and the offer is a narrow one"


def _suites_refused(row: dict) -> str:
    """:data:`SUITES_REFUSED` with what the ClientHello offered (the internal column ``tls_offer``,
    :func:`kscc_traffic.inspect._tls_offers`) and whose setting that points to: a current offer
    (:data:`OFFER_CURRENT_SAID`) what answered in the server's place, a narrow one
    (:data:`OFFER_NARROW_SAID`) the agent's TLS policy, an offer not read both."""
    offer = str(row.get("tls_offer") or "")
    if offer.startswith(OFFER_CURRENT):
        # (the ClientHello offers what any current server accepts: what answered is the
        # cause, not the agent's policy; newcomer s59 #3)
        return (f"{SUITES_REFUSED}, {OFFER_CURRENT_SAID} ({offer[len(OFFER_CURRENT):]}): not a TLS policy on the "
                "agent's device most likely, but what answered in the server's place (an old proxy or firewall, a "
                "TLS-inspecting device) or a server restricted to other ones")
    if offer.startswith(OFFER_NARROW):
        return (f"{SUITES_REFUSED}, {OFFER_NARROW_SAID} ({offer[len(OFFER_NARROW):]}): a TLS policy on the agent's "
                "device restricting them most likely (a cipher-suite GPO or FIPS mode, an old operating system), or "
                "a device answering in the server's place")
    return (f"{SUITES_REFUSED} (a TLS policy on the agent's device restricting them, a cipher-suite GPO or FIPS "
            "mode, or a device answering in the server's place)")


def _old_version_note(row: dict, why: str, by_address: bool = False) -> str:
    """``why`` (the alert that aborted a TLS handshake: ``tls_alert``) with what a
    ``protocol_version`` alert means where the capture shows it: the client's, after a
    ServerHello of an old version (``tls_version`` in :data:`OLD_TLS_VERSIONS`), says the answer
    chose a version the client does not accept (break-it s52 v6 #8: the detail quoted the alert
    alone); the server's says it accepts none the client offered. A server's ``handshake_failure``
    or ``insufficient_security`` answering the ClientHello itself (its whole stream an alert or two,
    read from its start: no ServerHello sent, not one the capture missed) says it accepts none of
    the cipher suites, groups or signature algorithms offered, and, where the internal column
    ``tls_offer`` read the ClientHello (:func:`kscc_traffic.inspect._tls_offers`), whether its offer
    was a current one (:data:`OFFER_CURRENT_SAID`: what answered in the server's place most likely,
    not the agent's TLS policy) or a narrow one (:data:`OFFER_NARROW_SAID`: the agent's policy most
    likely); without a server name (SNI), that a server routing by name refuses it so first, unless
    ``by_address`` (the rule's server is a distribution point, :data:`PINNED_OPENER`, which the agent
    reaches by address: no SNI is its normal hello); a client's ``internal_error``, its own stack
    failing. Else ``why`` as it is."""
    version = str(row.get("tls_version") or "")
    if str(why).startswith("server:") and str(why).endswith(("handshake_failure (40)", "insufficient_security (71)")) \
            and not version and not row.get("start_lost") and not row.get("payload_cut") \
            and _number(row, "resp_bytes", int, 0) <= 2 * ALERT_RECORD_BYTES:
        # (answering the ClientHello itself, before any ServerHello: nothing offered was acceptable;
        # break-it s55 tls #7, advised as inspection alone; without a server name, the name first:
        # a front end routing by SNI refuses a nameless ClientHello so, fp s55 #4)
        offered = _suites_refused(row)
        if not row.get("sni") and not by_address:
            return (f"{why}: the ClientHello carried no server name (SNI), which a server or front end that routes "
                    f"by name refuses so; else {offered}")
        return f"{why}: {offered}"
    if str(why).startswith("client:") and str(why).endswith("internal_error (80)"):
        # (after the server's answer, also what it sent: a certificate or parameters the client's
        # stack cannot use, an inspecting device's among them; fp s55 #7)
        return (f"{why}: the client's own TLS stack failed (on the agent's device"
                + ("; on what the server's side sent too: a certificate or parameters it cannot use, a "
                   "TLS-inspecting device's among them)" if version else ", not on the path)"))
    if not str(why).endswith("protocol_version (70)"):
        return why
    if why.startswith("client:") and version in OLD_TLS_VERSIONS:
        return (f"{why}: the server's side answered with {version}, which the client does not accept (TLS 1.0 "
                "and 1.1 are deprecated, RFC 8996; the documented servers do not answer so): an old TLS-inspecting "
                "proxy or firewall answering in the server's place, most likely")
    if why.startswith("server:"):
        return f"{why}: {VERSION_REFUSED}"
    return why


def _lost(row: dict, what: str) -> str:
    """How a UDP flow's answers were lost when each packet of its responder was a fragment of an
    IP datagram never captured whole (internal column ``unreassembled``)."""
    n = int(row["resp_pkts"])
    came = (f"the {n} packets that came back were IP fragments of {what}s" if n != 1 else
            f"the packet that came back was an IP fragment of {'an' if what[0] == 'a' else 'a'} {what}")
    return (f"{came} never captured whole, which the client could not reassemble (fragments dropped on "
            "the way? a firewall or path that drops IP fragments: large answers need them)")


#: the detail of a TCP connection whose server held its receive window at zero from its SYN-ACK on
#: and took no byte while the client went on probing it (internal column ``window_closed``,
#: :func:`.inspect._window_closed`; Zeek: history with ``W``): ``blocked``/``no_answer``
WINDOW_CLOSED = ("the SYN was answered, but the server's TCP window stayed closed (0) from its SYN-ACK on: "
                 "it took no byte in {s} s of the client's zero-window probes (a tarpit, or a server too "
                 "loaded to read)")


def window_close_end(state: str) -> str:
    """What the detail :data:`WINDOW_CLOSED` adds of how a tarpit's connection ended, from its
    Zeek ``state`` (conn_state): ``"; then the server reset the connection (RSTR)"`` (a FIN:
    ``closed``, S3; the client's: RSTO, S2; both FINs: SF), '' when it is still open (S1) or
    ended otherwise."""
    ends = {"RSTR": "the server reset the connection (RSTR)", "S3": "the server closed the connection (FIN, S3)",
            "RSTO": "the client reset the connection (RSTO)", "S2": "the client closed the connection (FIN, S2)",
            "SF": "the connection was closed (FIN both ways, SF)"}
    end = ends.get(state, f"the connection closed ({state})" if state in _CLOSED_STATES else "")
    return f"; then {end}" if end else ""


#: how the detail of a TCP connection that stalled starts (:func:`_stall`; report.readiness
#: counts such flows by it: a connection made, then dropped on the way, no port to open)
STALLED = "the connection stalled"


def _stall(row: dict) -> str | None:
    """The detail of a TCP connection that stalled (internal column ``stall_from_s``,
    :func:`.inspect._stalled`: the originator sent its last bytes again, the responder
    acknowledged none of them and sent nothing new, or only packets that took nothing with an
    open window; ``resp_stall_from_s``: the roles swapped)
    for :data:`TLS_SILENCE_S` or more (the flow lasting that long after their first sending, or
    the capture going on), else None."""
    since = _number(row, "stall_from_s", float, -1.0)
    who = ("responder", "originator")
    if since < 0:
        since = _number(row, "resp_stall_from_s", float, -1.0)
        who = ("originator", "responder")
    # (the silent side closed or reset the connection: its silence is no stall)
    if since < 0 or _closed_by(str(row.get("history") or ""), who[0] == "responder"):
        return None
    gap = float(row.get("duration", 0)) - since
    what = f"{STALLED}: the {who[0]} acknowledged none of the {who[1]}'s last bytes, sent again,"
    why = " (a firewall that dropped the connection: an idle session timed out, a path broken)"
    if gap >= TLS_SILENCE_S:
        return f"{what} in the {gap:.1f} s after their first sending{why}"
    if gap + _quiet(row) >= TLS_SILENCE_S:
        return f"{what} in the {TLS_SILENCE_S:g} s or more after their first sending, the capture going on{why}"
    return None


def _close_served(row: dict) -> int:
    """The server's bytes before the first FIN or RST of a closed TLS handshake: the internal
    column ``tls_close_served`` (:func:`.inspect._close_waits`, by sequence numbers); -1 where
    not found (-1, missing, not a number)."""
    try:
        return max(int(row.get("tls_close_served")), -1)
    except (TypeError, ValueError, OverflowError):
        return -1


def _served_before_close(row: dict) -> bool:
    """Whether the server had sent a byte before the first FIN or RST of a closed TLS handshake:
    :func:`_close_served` > 0, else (unknown) ``resp_bytes`` > 0."""
    before = _close_served(row)
    if before >= 0:
        return before > 0
    return int(row.get("resp_bytes", 0) or 0) > 0


#: what a ClientHello sent again that the server never acknowledged, after a TCP handshake that
#: completed, means (:func:`_silent_close`)
HELLO_DROPPED = ("dropped on the way after the TCP handshake was let through (a firewall or IPS filtering on the "
                 "ClientHello or its SNI, or a path that loses larger packets)")


def _silent_close(row: dict, target: str) -> str | None:
    """The detail of a TLS handshake not completed on a closed connection whose server had sent
    nothing for :data:`TLS_SILENCE_S` or more before the first FIN or RST (internal columns
    ``tls_close``, ``tls_close_wait_s``: :func:`.inspect._close_waits`): its ClientHello (no byte
    of the server at all; inside a CONNECT tunnel, none after the proxy's answer) or the client's
    next flight (``tls_wait_after``) not answered, then who closed; an alert of the other side
    after that close is told as its answer. None when not so (a shorter silence, an alert of the
    side that closed or one sent before the close: the handshake was aborted)."""
    wait = _number(row, "tls_close_wait_s", float, -1.0)
    close = str(row.get("tls_close") or "").split()
    if wait < TLS_SILENCE_S or len(close) < 2:
        return None
    who, how, answered = close[0], close[1], close[2:] == ["answered"]
    alert = str(row.get("tls_alert") or "")
    other = "server" if who == "client" else "client"
    if alert and not (answered and alert.startswith(f"{other}: ")):
        return None
    then = f"then the {who} {'reset the connection' if how == 'RST' else 'closed'}"
    if target and who == "server":
        # (the tunnel's far end is the proxy's connection: the proxy closed it, whatever it was
        # told; break-it s56 v6 #5)
        proxy = endpoint_text(str(row.get("resp_h") or ""), int(row.get("resp_p", 0) or 0))
        then = f"then the proxy {proxy} {'reset' if how == 'RST' else 'closed'} the tunnel"
    if alert:
        then += f" (the {other}'s {alert[len(other) + 2:]} alert answered that close)"
    silent = (_number(row, "tunnel_resp_bytes", int, 0) <= 0 and not row.get("server_proto")) if target \
        else not _served_before_close(row)
    if answered and not alert:
        # (bytes the other side sent after the close answered nothing before it: break-it 23 F5)
        then += (" (the server's first bytes came only after it)" if silent and who == "client" else
                 f" (the {other} sent more only after it)")
    if silent and not target and who == "client" and row.get("orig_resent") \
            and int(row.get("resp_pkts", 0) or 0) <= 1 and int(row.get("resp_bytes", 0) or 0) == 0:
        # (not even an ACK of the ClientHello sent again: it never reached the server's TCP, a
        # drop on the way after the handshake was let through; break-it s52 v6 #6)
        return (f"ClientHello sent again, never acknowledged by the server (its only packet the SYN-ACK), no byte "
                f"from it for {wait:.1f} s, {then}: {HELLO_DROPPED}")
    if silent:
        return f"ClientHello not answered: no byte from the server for {wait:.1f} s, {then}"
    flight = row.get("tls_wait_after") or ""
    if not flight:
        return None
    return f"TLS handshake not completed: the server sent nothing for {wait:.1f} s after the client's {flight}, {then}"


#: a ClientHello record at least this long (bytes) is said to be made so by a post-quantum key
#: share (X25519MLKEM768's alone is 1,216 bytes; a ClientHello without one is some 250-750)
PQ_HELLO_BYTES = 1300


def split_text(split: str) -> tuple[str, str]:
    """``hello_split`` (:func:`.inspect._hello_split`) as ``(text, group)``: the text a detail shows
    (``"1,555 bytes in 2 segments"``…) and the post-quantum key share group its ClientHello
    carries (``"X25519MLKEM768"``, from the ``"pq:<group>:"`` start, :data:`.inspect.HELLO_PQ`),
    '' when none was seen."""
    if split.startswith(HELLO_PQ):
        group, _, rest = split[len(HELLO_PQ):].partition(":")
        return rest, group
    return split, ""


def _pq_note(split: str) -> str:
    """What the detail of a split ClientHello (``hello_split``, see :func:`split_text`) adds about
    its size: the post-quantum key share when the ClientHello carries one and the record is at
    least :data:`PQ_HELLO_BYTES` long, else '' (a ClientHello padded, or large for other
    extensions, is not said to be so for a key share it does not have)."""
    text, group = split_text(split)
    try:
        size = int(text.split(" bytes", 1)[0].replace(",", ""))
    except ValueError:
        return ""
    return f" (a post-quantum key share, {group}, makes it this large)" if group and size >= PQ_HELLO_BYTES else ""


#: how a detail says that the handshake was judged without its bytes
_UNREAD = "the handshake cut by the snaplen: judged from the TCP packets"
#: ... when the capture lost the client's first bytes, the server acknowledging them (internal
#: column ``start_lost``: 'orig' or 'both'; the server's: 'resp'), no snaplen involved
_UNREAD_LOST = ("the client's first bytes lost by the capture, the server acknowledging them: judged from the "
                "TCP packets")
_UNREAD_LOST_RESP = ("the server's first bytes lost by the capture, the client acknowledging them: judged from the "
                     "TCP packets")


#: ... when a segment before more data was not captured (internal ``cut_why`` "gap")
_UNREAD_GAP = "the handshake's bytes interrupted by a segment the capture lost: judged from the TCP packets"
#: ... when a direction had more segments or bytes than are inspected (``cut_why`` "limit"; the
#: capture holds them)
_UNREAD_LIMIT = (f"the handshake longer than what is inspected of a direction (its first {MAX_SEGMENTS} TCP segments, "
                 f"at most {MAX_BYTES // 1024} KiB): judged from the TCP packets")


def _cut_cause(row: dict) -> str:
    """Why a TCP flow's bytes (``payload_cut``) were not all read: ``start`` (the capture lost its
    first bytes: internal ``start_lost``), else ``gap`` (a segment within them: ``cut_why``),
    ``limit`` (more segments or bytes than are inspected; the capture holds them), ``snaplen``."""
    if row.get("start_lost"):
        return "start"
    why = row.get("cut_why") or ""
    return why if why in ("gap", "limit") else "snaplen"


def _unread_how(row: dict) -> str:
    """How a detail says that a TCP flow's handshake was judged without its bytes, by
    :func:`_cut_cause`: the capture lost them (whose first bytes: internal ``start_lost``), a
    segment within them, more segments than are inspected held them, else the snaplen cut them
    (:data:`_UNREAD`)."""
    cause = _cut_cause(row)
    if cause == "start":
        return _UNREAD_LOST if row.get("start_lost") in ("orig", "both") else _UNREAD_LOST_RESP
    return {"gap": _UNREAD_GAP, "limit": _UNREAD_LIMIT}.get(cause, _UNREAD)


#: what a detail says cut a TCP flow's bytes, by :func:`_cut_cause` (:func:`_cut_by`)
_CUT_BY = {"start": "lost by the capture", "gap": "lost by the capture", "snaplen": "cut by the snaplen",
           "limit": f"past what is inspected (the first {MAX_SEGMENTS} segments, at most {MAX_BYTES // 1024} KiB)"}


def _cut_by(row: dict) -> str:
    """What a detail says cut a TCP flow's bytes (``payload_cut``), by :func:`_cut_cause`: ``lost
    by the capture``, ``past what is inspected (…)`` (the capture holds them), or ``cut by the
    snaplen``."""
    return _CUT_BY[_cut_cause(row)]


#: ... when the client's first segments, all that are inspected, end before its ClientHello does
#: (``hello_split`` "… in more than …"), no server byte after them to read acknowledgements from
_UNREAD_SEGMENTS = (f"the ClientHello in more than {MAX_SEGMENTS} TCP segments, more than are inspected: "
                    "judged from the TCP packets")
#: ... when the client's inspected segments ended before the server's answer (``blind_window``)
_UNREAD_WINDOW = (f"the ClientHello in more than {MAX_SEGMENTS} TCP segments, more than are inspected: "
                  "judged from the TCP packets and the server's acknowledgements")


#: what cut a handshake, by :func:`_cut_cause`, as :func:`_unread_close`'s details say it
_CUT_HANDSHAKE = {"start": "the capture lost the handshake's first bytes", "gap": "the capture lost a segment of the "
                  "handshake", "limit": "more than the inspected segments held the handshake",
                  "snaplen": "the snaplen cut the handshake"}


def _unread_close(row: dict) -> tuple[str, str, str] | None:
    """(verdict, reason, detail) of a closed TCP flow to a TLS port whose handshake is not all in
    the bytes inspected (``payload_cut``: its ClientHello cut before it could be read, or its end
    not in view) and whose packets do not show a handshake that went on (no readable alert), or
    None (judged ok). Reads ``conn_state``, ``resp_bytes`` and the internal
    columns ``blind_client_next``, ``blind_closer``, ``blind_wait_s``, ``blind_server_next``,
    ``blind_client_alert``, ``blind_window`` (:func:`.inspect.inspect_flows`; with ``blind_window``,
    the client's inspected segments ending before the server's answer, the details say so instead
    of the snaplen; likewise with ``hello_split`` "… in more than …": the ClientHello longer than
    the client's inspected segments, no snaplen involved, break-it 24 F8).

    - the client closed first right after sending, past the server's last flight, fewer bytes than
      any encrypted record (a cleartext alert: a certificate rejected, also after a
      HelloRetryRequest round): ``tls_failed``;
    - no next flight from the client after the server's first data (it sent none, or at most an
      alert's size: a certificate it rejected), or no byte from the server: ``tls_failed``;
    - the server answered that flight with fewer bytes than any encrypted record
      (:data:`.inspect.SMALLEST_SEALED`: a cleartext alert): ``tls_failed``;
    - the client sent its next flight, the server neither acknowledged it nor sent a byte for
      :data:`TLS_SILENCE_S` or longer, then the client closed: ``tls_failed`` (the flight dropped
      on its way; a TLS 1.3 session left idle has its Finished acknowledged);
    - the client sent its next flight and then closed first: ok (a TLS 1.3 or resumed handshake
      is over once the client's Finished is sent: a health check closes then), but not judged
      when the server had sent nothing more for :data:`TLS_SILENCE_S` or longer before (a TLS
      1.2 server's answer dropped on its way, or a TLS 1.3 session left idle: the same packets);
    - the server closed first, at most an alert's size after the client's flight: not judged (a
      TLS 1.3 or resumed session's close_notify cannot be told from a TLS 1.2 server's refusal
      without the bytes)."""
    state = row.get("conn_state", "")
    segments = " in more than " in str(row.get("hello_split") or "")
    how = _UNREAD_WINDOW if row.get("blind_window") else _UNREAD_SEGMENTS if segments else _unread_how(row)
    cut = "more than the inspected segments held the ClientHello" if row.get("blind_window") or segments \
        else _CUT_HANDSHAKE[_cut_cause(row)]
    final = _number(row, "blind_client_alert", int, 0)
    if final > 0:
        return ("blocked", "tls_failed", f"TLS handshake aborted: after the server's last flight the client "
                f"sent {final} bytes, a cleartext alert's size (no encrypted record is that short), and closed "
                f"the connection ({state}): a certificate it rejected? ({how})")
    if int(row.get("resp_bytes", 0)) == 0:
        # (who closed and when, as for a ClientHello read whole: the packets tell it, not its bytes)
        silence = _silent_close(row, "")
        if silence:
            return "blocked", "tls_failed", f"{silence} ({how})"
        who = _who_closed(row, state, [])
        if who:
            return "blocked", "tls_failed", f"TLS handshake aborted: {who} ({how})"
        return ("blocked", "tls_failed", f"TLS handshake aborted: connection closed ({state}) before the "
                f"server sent a byte ({how})")
    if not row.get("blind_client_next"):
        return ("blocked", "tls_failed", f"TLS handshake aborted: connection closed ({state}) with no next "
                f"flight from the client after the server's answer ({how})")
    after = _number(row, "blind_server_next", int, 0)
    if 0 < after < SMALLEST_SEALED:
        return ("blocked", "tls_failed", f"TLS handshake aborted: the server answered the client's next "
                f"flight with {after} bytes, a cleartext alert's size (no encrypted record is that short), "
                f"then the connection closed ({state}) ({how})")
    if row.get("blind_closer") == "client":
        wait = _number(row, "blind_wait_s", float, -1.0)
        if wait >= TLS_SILENCE_S and row.get("blind_unacked") and after <= 0:
            return ("blocked", "tls_failed", f"TLS handshake not completed: the server sent nothing and "
                    f"acknowledged nothing for {wait:.1f} s after the client's next flight, then the client "
                    f"closed ({state}): the flight dropped on its way ({how})")
        if wait >= TLS_SILENCE_S:
            return ("unclassified", "", f"the server sent nothing for {wait:.1f} s after the client's next "
                    "flight, then the client closed: a TLS 1.2 server whose answer was dropped, or a TLS 1.3 "
                    f"session left idle, cannot be told apart when {cut}: not judged")
        return None
    return ("unclassified", "", "the server closed the connection after the client's next flight with at "
            "most an alert's size after it: a TLS 1.3 or resumed session's close cannot be told from a "
            f"refusal when {cut}: not judged")


#: the detail of a QUIC flow (``service`` quic: a long-header Initial, RFC 9000 §17.2) to UDP 443 of
#: a Kaspersky name: not judged (no rule documents UDP 443, but it is no misconfiguration either)
QUIC_DETAIL = ("QUIC (HTTP/3) on UDP 443: not a documented KSC purpose (browser traffic; the agent "
               "uses TCP 443)")

#: detail of a TCP or UDP flow none of whose packets kept its transport header (ports -1: an IPv6
#: capture with a 54-byte snaplen keeps no byte of it; non-first fragments whose first fragment
#: was not captured); ``{proto}`` is TCP or UDP
NO_PORTS_DETAIL = ("no packet of this flow kept its {proto} header (the snaplen cut each one before it, "
                   "or fragments whose first fragment was not captured): ports unknown, so every {proto} "
                   "exchange between these two hosts is this one flow; not judged (capture with a larger "
                   "snaplen, e.g. tcpdump -s 0)")

#: ... and of such a flow whose packets are all IP fragments of datagrams never captured whole
#: (internal column ``unreassembled``): the later fragments, whose first ones (holding the ports)
#: are in the flow of those ports when captured
FRAG_TAILS_DETAIL = ("this flow's packets are later IP fragments of {proto} datagrams never captured whole (a first "
                     "fragment, which holds the ports, is in the flow of its ports when it was captured): a fragment "
                     "lost before the capture point (a firewall or path that drops IP fragments), overlapping "
                     "fragments dropped whole (RFC 5722: a warning counts them), or the capture began or ended "
                     "amid them; ports unknown, so every such fragment between these two hosts is "
                     "this one flow; not judged")

#: detail of a TCP flow none of whose TCP headers was captured whole (``tcp_hdr_cut``)
HDR_CUT_DETAIL = ("the snaplen cut the TCP header of every packet of this flow (ports seen; flags, "
                  "sequence numbers and lengths not): its state and bytes are unknown, not judged "
                  "(capture with a larger snaplen, e.g. tcpdump -s 0)")


def _partial_silence(row: dict) -> tuple[str, str, str]:
    """(verdict, reason, detail) of a TCP flow whose start was not captured (``partial``) and
    whose responder sent nothing (``resp_pkts`` 0): nothing shows the server was reached.

    ``blocked``/``no_answer`` when the originator sent 2 packets or more, data among them
    (:func:`_orig_sent_data`: history ``D``, data or a keep-alive of one old byte, or more than
    one byte carried on a FIN), sent some of its bytes again
    (``orig_resent``: retransmissions, keep-alive probes; new data only is what a capture of one
    direction of a working connection shows, asymmetric routing), and nothing came back for
    :data:`TLS_SILENCE_S` or more after its first packet (``duration`` + ``quiet_s``: the flow
    lasting that long, or the capture going on after it): the connection died before our eyes,
    the usual sign of a firewall that dropped the idle session of a long-lived connection.
    Else ``unclassified`` (not judged, so it never verifies its purpose): one packet (a lone RST
    or FIN needs no answer), packets without data (the FIN, RST or ACK at a connection's end:
    Zeek #862's FIN sent again after the peer's RST; a zero-byte keep-alive cannot be told from
    an ACK of server data the capture missed), or a capture that ended too soon after them.
    ``unclassified``/``one_way`` whatever else when the originator's acknowledgements show more
    than one byte of the responder's arriving (``acked_unseen`` 'resp', ``resp_bytes`` from those
    acknowledgements; one byte may be its FIN): something came back, the capture missed it.
    Reads ``orig_pkts``, ``history``, ``orig_bytes``, ``orig_resent``, ``duration``, ``quiet_s``,
    ``acked_unseen``, ``resp_bytes``."""
    n = int(row["orig_pkts"])
    sent = f"{n} packet{'s' if n != 1 else ''}"
    data = _orig_sent_data(row)
    got = int(row.get("resp_bytes") or 0) if (row.get("acked_unseen") or "") == "resp" else 0
    if got > 1:
        # (its acknowledgements went on: the responder's bytes reached it, the capture missed them)
        return ("unclassified", "one_way", f"capture started mid-connection; only the originator's {sent} "
                f"captured, whose acknowledgements show {got:,} bytes of the responder's arriving: "
                f"{ONE_WAY_HINT}; not judged")
    if n >= 2 and data and row.get("orig_resent") \
            and float(row.get("duration", 0)) + _quiet(row) >= TLS_SILENCE_S:
        return ("blocked", "no_answer", f"capture started mid-connection; {sent} sent, nothing came back "
                "(the connection died: a firewall that dropped an idle session?)")
    if not data:
        return ("unclassified", "", f"capture started mid-connection; {sent} without data sent (FIN, RST "
                "or ACK: a connection's end), nothing came back: not judged")
    return ("unclassified", "", f"capture started mid-connection; {sent} sent, nothing came back: too "
            "little to judge")


#: how the detail of a SYN to a distribution point (rule opener ``agent_to_dp``) answered by a
#: TCP reset starts (report.readiness counts such flows: the service first, not only the firewall)
DP_RESET = "the SYN was answered by a TCP reset from the distribution point"
#: ... and goes on when the client is on the distribution point's subnet (no router between)
DP_RESET_ITSELF = DP_RESET + " itself"
#: the TTL hint of such a reset from another subnet that came with the distribution point's own
#: TTL (:data:`~kscc_traffic.inspect.REFUSED_OWN` replaced: the detail already says what may answer)
DP_OWN_TTL = ("its {field} is that of the distribution point's packets on other connections: most likely its own "
              "answer (no listener, or its host firewall), not a firewall between the subnets")


def same_subnet(a: str, b: str) -> bool:
    """Whether two address texts (``orig_h``, ``resp_h``) are in one /24 (IPv4) or /64 (IPv6):
    the usual LAN subnet, no router between them. False for anything not an address."""
    try:
        x, y = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        return False
    if x.version != y.version:
        return False
    bits = 24 if x.version == 4 else 64
    return (int(x) >> (x.max_prefixlen - bits)) == (int(y) >> (y.max_prefixlen - bits))


def dp_reset_detail(client: str, dp: str) -> str:
    """The detail of a SYN from ``client`` to the distribution point ``dp`` answered by a TCP
    reset (the reset comes from ``dp``'s address): on the client's subnet (:func:`same_subnet`)
    no router or firewall is between them, so it is the distribution point's own answer: nothing
    listens on the port (the service not running or not enabled) or its own firewall rejects it
    (Windows' drops; a reset is rather no listener); across subnets a firewall between them may
    also have sent it."""
    if same_subnet(client, dp):
        return (f"{DP_RESET_ITSELF} ({dp}, on the client's subnet: no router between them): nothing listens on "
                "the port there (the service is not running or not enabled), or its own firewall rejects it")
    return (f"{DP_RESET}'s address ({dp}): nothing listens on the port there (the service is not running or not "
            "enabled), or a firewall rejects it (its own, or one between the subnets)")


#: what the detail of a flow seen in one direction only asks
ONE_WAY_HINT = "only one direction captured (a mirror port or tap that sees one direction, or asymmetric routing?)"


def _one_way(row: dict, tls: bool) -> tuple[str, str, str]:
    """(verdict, reason, detail) of a TCP flow whose SYN was captured and none of whose
    responder's packets was, while the originator acknowledged them (``acked_unseen`` 'resp'):
    its packets after the SYN acknowledge a SYN-ACK, which reached it, and ``resp_bytes`` (from
    those acknowledgements, its first one taken as the responder's ISN + 1) of the responder's
    bytes; one byte of them may be the responder's FIN, which cannot be told from data.

    What the acknowledgements prove is judged as a capture of both directions would be; what
    they do not prove is not judged:

    - the originator sent data, acknowledged at most one byte of the responder's (nothing after
      the SYN-ACK reached it but maybe a FIN) and sent some of its bytes again (``orig_resent``:
      its data was not acknowledged either): ``blocked`` (``tls_failed`` for a ClientHello on a
      TLS purpose, else ``no_answer``); so too when that lasted :data:`TLS_SILENCE_S` (the flow,
      or the capture going on after it: ``quiet_s``), or the originator closed or reset it then
      (``F``/``R``): no answer came to its data;
    - a ClientHello answered with fewer bytes than any encrypted record (a cleartext alert's
      size, :data:`~kscc_traffic.inspect.SMALLEST_SEALED`, a FIN included), after which the
      client closed: ``blocked``/``tls_failed``;
    - a ClientHello answered (more than one byte), then refused by the client's cleartext alert on
      the certificate (``tls_alert`` ``client: …`` bad_certificate, unsupported_certificate,
      certificate_revoked, certificate_expired, certificate_unknown, unknown_ca; not
      ``tls_established``; the alert's level is not read: TLS 1.3 treats these as fatal whatever
      it says):
      ``blocked``/``tls_failed``, whose certificate it was not shown (:data:`ONE_WAY_CERT`);
    - else ``unclassified``/``one_way``: the server answered (its SYN-ACK, and ``resp_bytes``),
      but what it said and what became of the originator's bytes are not in the capture; the
      purpose is then *seen one-way* in the checklist, never verified by it.

    The originator sent data: :func:`_orig_sent_data` (its payload on a SYN or FIN too).
    Reads ``orig_pkts``, ``history``, ``orig_bytes``, ``resp_bytes``, ``service``, ``orig_resent``,
    ``duration``, ``quiet_s``, ``tls_alert``, ``tls_established``."""
    got = int(row.get("resp_bytes") or 0)
    history = history_plain(str(row.get("history") or ""))
    data = _orig_sent_data(row)
    closed = "F" in history or "R" in history
    hello = tls and row.get("service") in _SSL_SERVICES
    seen = (f"only the originator's packets were captured: they acknowledge the responder's SYN-ACK and "
            f"{got:,} byte{'s' if got != 1 else ''} of its" if got > 1 else
            "only the originator's packets were captured: they acknowledge the responder's SYN-ACK")
    if data and got <= 1:
        waited = float(row.get("duration", 0)) + _quiet(row)
        what = "ClientHello" if hello else "data"
        fail = ("blocked", "tls_failed" if hello else "no_answer")
        if row.get("orig_resent"):
            return (*fail, f"{what} sent again, never acknowledged by the server ({seen}, nothing of the "
                    f"server's after it{' but maybe a FIN' if got else ''}: the {what} or its answers dropped on "
                    "the way)")
        if closed or waited >= TLS_SILENCE_S:
            how = "then the client closed" if closed else f"for {TLS_SILENCE_S:g} s or more"
            return (*fail, f"{what} not answered: {seen}, no byte of the server's after it"
                    f"{' but maybe a FIN' if got else ''}, {how}")
    if hello and 1 < got < SMALLEST_SEALED and closed:
        return ("blocked", "tls_failed", f"TLS handshake aborted: {seen} answers, a cleartext alert's size "
                "(a FIN included), then the client closed")
    alert = str(row.get("tls_alert") or "")
    if hello and got > 1 and alert.startswith("client:") \
            and alert.endswith(_CERT_REJECTED + _CERT_EXPIRED + _CERT_REVOKED) and not row.get("tls_established"):
        # (the client refused the certificate in its answers: a failure the acknowledgements and its
        # own alert prove, whoever's certificate it was; break-it s50 #3)
        return ("blocked", "tls_failed", f"TLS handshake aborted: {alert}: the client refused the server's "
                f"certificate; {seen} answers, and {ONE_WAY_CERT}")
    return ("unclassified", "one_way", f"{seen}{' answers' if got > 1 else ''}, so the server answered; "
            f"{ONE_WAY_HINT}; not judged")


#: what the detail of a TLS handshake the client aborted on a certificate says when only its side
#: was captured (:func:`_one_way`; report.cert_counts advises it as a certificate not shown)
ONE_WAY_CERT = ("the server's side was not captured, so the capture cannot show whose certificate it was: a "
                "TLS-inspecting proxy's, whose CA the agent does not trust, or the server's own, whose root the "
                "agent's device lacks (or its system time is wrong)")


def _closed_by(history: str, responder: bool) -> bool:
    """Whether the ``history`` shows a FIN or RST from the responder (lower-case ``f``/``r``) or,
    when not ``responder``, from the originator (``F``/``R``; a FIN+RST packet's ``I``/``i`` too)."""
    history = history_plain(history)
    return any(ch in history for ch in ("fr" if responder else "FR"))


def _handshake_end(history: str) -> str:
    """How a TCP connection that began with a SYN and a SYN-ACK ended, from its ``history``:
    ``"unacked"`` nothing else at all (``Sh``: the originator never acknowledged the SYN-ACK),
    ``"reset"`` the responder's reset before any data either way and before any FIN or RST of
    the originator (``ShAr``: a SYN proxy whose server is gone; also after its own FIN, ``ShAfr``),
    ``"closed"`` the responder's FIN first, before any data either way, and no reset of its own
    after it (``ShAfFa``), ``"aborted"`` the originator's RST first, before any data either way
    (``ShAR``, ``ShRr``: a port probe; with the responder's reset after it Zeek says REJ),
    ``""`` anything else (data, the originator's FIN first, no end seen). (A FIN+RST packet's
    ``I``/``i`` counts as its FIN then its RST.)"""
    h = history_plain(history).lstrip("^")
    if h == "Sh":
        return "unacked"
    if not h.startswith("Sh") or any(ch in h for ch in "Dd"):
        return ""
    first = next((ch for ch in h if ch in "rRfF"), "")
    if first == "R":
        return "aborted"
    if first in "rf" and first and "r" in h and ("F" not in h or h.index("r") < h.index("F")):
        return "reset"
    return "closed" if first == "f" else ""


def _judged_state(row: dict) -> str:
    """The ``conn_state`` a TCP or UDP flow row is judged by: its own, except Zeek's ``REJ`` of a
    SYN answered by a SYN-ACK whose originator then sent data after its own RST before the
    responder's RST (Zeek's sizes leave that data out, so both are 0: REJ), judged as the
    responder's reset of a connection it had accepted, ``RSTR``; a REJ whose handshake both
    sides reset before any data (:func:`_bare_handshake_end` ``aborted``/``reset``) keeps its
    own judgement. Reads ``conn_state``, ``proto``, ``history``, ``orig_bytes``, ``partial``."""
    state = str(row.get("conn_state") or "")
    if state != "REJ" or row.get("proto") != "tcp" or "h" not in history_core(str(row.get("history") or "")):
        return state
    return state if _bare_handshake_end(row) in ("aborted", "reset") else "RSTR"


def _bare_handshake_end(row: dict) -> str:
    """:func:`_handshake_end` of a TCP flow row's ``history``, but '' for ``reset``, ``closed``
    and ``aborted`` when the originator sent payload all the same (:func:`_orig_sent_data`: a
    TCP Fast Open SYN carrying the ClientHello, RFC 7413, for which Zeek writes no ``D``): the
    connection did not end "before any data", and the TLS or HTTP rules judge it (break-it 29).
    Reads ``history``, ``orig_bytes``, ``partial``."""
    end = _handshake_end(str(row.get("history") or ""))
    if end in ("reset", "closed", "aborted") and _orig_sent_data(row):
        return ""
    return end


#: how the detail of a TCP attempt starts whose correct SYN-ACKs reached the originator's host (a
#: capture there: its SYNs carry an initial TTL) while it kept sending its SYN (internal column
#: ``synack_not_taken``: :func:`.inspect._synack_not_taken`): its own firewall, security software
#: or filter driver drops them (report.readiness counts such flows: their advice is the agent
#: host's, not to allow outbound ports; newcomer 36 F2)
SYNACK_NOT_TAKEN = "the SYN-ACK reached the originator's interface but it did not take it"
#: ... and of one whose SYN-ACKs, captured where the server is (or between), never reached the
#: originator: the SYN got through, the way back did not (report.return_path_fix; break-it s55 dp #2)
SYNACK_LOST = "the SYN-ACK never reached the originator"
#: how the detail of a connection the responder reset right after the handshake starts (report
#: counts such ``blocked`` flows: the port is open, what answered has no server behind it)
HANDSHAKE_RESET = "the responder reset the connection right after the handshake, before any data"
#: ... and of one it closed (FIN) right after the handshake, before the client sent anything
HANDSHAKE_CLOSE = "the responder closed the connection (FIN) right after the handshake, before the client sent a byte"
#: ... and of a plain TCP purpose's connection the responder reset after taking the client's
#: request, answering none of it (report.readiness advises it with those: the port is open)
REQUEST_RESET = "the responder reset the connection after the client's request, answering none of it"
#: ... and of a plain HTTP request sent straight to the server (``cert_check``) that the responder
#: reset or closed unanswered (:func:`_proxy_refusal`, ``direct``): group 1 the request's URL
#: (report.readiness advises it with those, as a web filter's or IPS's refusal: the port is open)
DIRECT_UNANSWERED = re.compile(r"^the server \S+ (?:reset|closed) the connection without answering the request for "
                               r"(http://\S+)")
#: what both say of the device that answered
NO_SERVER_BEHIND = "a SYN proxy or load balancer with no server behind it?"


def _reset_handshake(end: str) -> tuple[str, str, str]:
    """(verdict, reason, detail) of a TCP connection whose SYN was answered by a SYN-ACK and
    which was reset before any data (``end`` of :func:`_handshake_end`: ``"reset"`` the responder
    reset first, ``"aborted"`` the originator did). The responder's reset: ``blocked``/``rejected``
    (:data:`HANDSHAKE_RESET`: a device that accepts connections with no server behind it); the
    originator's: ``ok``, the port open (a port probe, a connect or half-open scan, ends so; the
    responder's reset after it, which makes Zeek say REJ, changes nothing)."""
    if end == "reset":
        return "blocked", "rejected", f"{HANDSHAKE_RESET} ({NO_SERVER_BEHIND})"
    return ("ok", "", "the SYN was answered by a SYN-ACK (the port is open), then the originator reset the "
            "connection before any data (a port probe or scan?) and the responder reset it too")


def _closed_handshake(tls: bool) -> tuple[str, str, str]:
    """(verdict, reason, detail) of a TCP connection whose responder sent a FIN right after the
    handshake, before any data either way (``"closed"`` of :func:`_handshake_end`, within
    :data:`TLS_SILENCE_S`; break-it 23 F12). On a purpose where the client speaks first (``tls``:
    its ClientHello never went out) it is the reset's case closed with a FIN instead (an nginx
    ``stream`` proxy or HAProxy with no backend closes so): ``blocked``/``rejected``,
    :data:`HANDSHAKE_CLOSE`; on another purpose the responder may speak first: ``ok``, the same
    detail told."""
    if tls:
        return ("blocked", "rejected", f"{HANDSHAKE_CLOSE} (its ClientHello never went out: "
                f"{NO_SERVER_BEHIND[:-1]}, or a service refusing the client?)")
    return "ok", "", f"{HANDSHAKE_CLOSE} (a service with nothing to say, or {NO_SERVER_BEHIND})"


def group_tcp_detail(cast: str, address: str) -> str:
    """The detail of a TCP flow (unanswered) to ``address``, a ``cast`` ("broadcast" or
    "multicast") destination: TCP connects only to a unicast address (RFC 1122 §4.2.3.10: a TCP
    must refuse to open a connection to a broadcast or multicast address, and silently drop a
    SYN sent to one), so what is wrong is the address the sender uses, not a firewall."""
    which = ("a subnet's broadcast address, or a mistyped one" if cast == "broadcast"
             else "a multicast group's address")
    return (f"TCP to the {cast} address {address}: TCP connects only to a unicast address (RFC 1122 "
            "§4.2.3.10: no host accepts a SYN sent to a broadcast or multicast address), so no firewall rule can "
            f"make this work: the sender uses a wrong server address ({which}, set as the distribution point's or "
            "server's address?)")


#: the detail of a SYN-ACK the originator reset, with no SYN of its own in the capture
UNASKED_SYNACK_DETAIL = ("a SYN-ACK the originator did not ask for, answered with a reset: an answer from another "
                         "address or port than the one contacted (a load balancer or NAT answering asymmetrically?); "
                         "not judged")


def _unasked_synack(history: str) -> bool:
    """A TCP flow (partial: no SYN captured) whose responder sent only SYN-ACKs and whose
    originator only resets (``^hR``): the originator never asked for that connection."""
    h = history.lstrip("^")
    return bool(h) and set(h) <= set("hR") and "h" in h and "R" in h


def _responder_only_closes(history: str) -> str:
    """What a TCP flow's responder sent, from its ``history`` (lower-case letters), when it was
    only connection ends: ``"r"`` only resets, ``"f"`` FINs (and maybe resets), ``""`` anything
    else (data, a pure acknowledgement, a SYN or SYN-ACK: an answer). (``i``, a FIN+RST packet:
    its FIN and its RST.)"""
    sent = {ch for ch in history_plain(history) if ch.islower()}
    if not sent or sent & set("dash"):
        return ""
    return "f" if "f" in sent else ("r" if "r" in sent else "")


#: what the detail of a connection begun before the capture whose data got only resets says
#: (:func:`_partial_closes`; report.readiness counts such flows by it: no port to open)
SESSION_GONE = "the connection no longer existed on the other side"


def _partial_closes(row: dict, closing: str) -> tuple[str, str, str]:
    """(verdict, reason, detail) of a TCP flow whose start was not captured (``partial``) whose
    responder sent only connection ends (:func:`_responder_only_closes`: ``closing`` ``"r"`` or
    ``"f"``), no data and no acknowledgement: nothing shows the purpose working.

    ``blocked``/``rejected`` when the originator sent data and was answered only by resets (RFC
    9293 §3.5.2: a reset answers a segment of a connection that does not exist: a stateful firewall
    that dropped the idle session of a long-lived connection, a server that forgot it); else
    ``unclassified``, not judged (FINs: a capture that began as the connection ended; resets
    to packets without data). Data: :func:`_orig_sent_data` (its payload on a FIN too). Reads
    ``history``, ``orig_bytes``, ``orig_pkts``, ``resp_pkts``."""
    n, m = int(row["orig_pkts"]), int(row["resp_pkts"])
    sent = f"{n} packet{'s' if n != 1 else ''}"
    back = f"{m} packet{'s' if m != 1 else ''}"
    if closing == "r" and _orig_sent_data(row):
        return ("blocked", "rejected", f"capture started mid-connection; the originator's data ({sent}) "
                f"was answered only by TCP resets ({back}): {SESSION_GONE} (a firewall that dropped an idle "
                "session?)")
    what = "resets" if closing == "r" else "FINs"
    return ("unclassified", "", f"capture started mid-connection; the responder sent only {what} ({back}), "
            "no data nor acknowledgement: a connection's end, not judged")


#: ``service`` of a flow whose ClientHello was seen (directly, or inside a CONNECT tunnel)
_SSL_SERVICES = ("ssl", "http,ssl")
#: how the ``proxy_target`` of a request in absolute-form starts (a CONNECT target never does)
_ABSOLUTE = tuple(f"{scheme}://" for scheme in PROXY_SCHEMES)


def _proxy_request(target: str) -> str:
    """How a detail names the request made to the proxy: ``CONNECT host:port``, or ``the request
    for http://host:port`` (absolute-form)."""
    return f"the request for {target}" if target.startswith(_ABSOLUTE) else f"CONNECT {target}"


def _proxy_answer(row: dict, target: str, direct: bool = False) -> tuple[str, str, str] | None:
    """:func:`_proxy_refusal` for any ``proxy_target``. A request in absolute-form (``GET
    http://host/...``) opens no tunnel: an answer 2xx, or 3xx (a redirect or ``304 Not Modified``
    of the target, passed on by the proxy) is the target reached (None: judged as the same HTTP
    sent directly); any other answer, or none, is judged as a CONNECT's and its detail names the
    request (``the request for http://host:port``). ``direct``: a plain HTTP request sent
    straight to the server (``target`` from :func:`_direct_target`), judged the same way: a
    transparent web filter answers 403, or resets, as an explicit proxy does."""
    if (direct or target.startswith(_ABSOLUTE)) and str(row.get("http_status") or "")[:1] in ("2", "3"):
        return None
    return _proxy_refusal(row, target, direct)


def _foreign_redirect(row: dict, rule) -> tuple[str, str, str] | None:
    """(``blocked``, ``rejected``, detail) of a plain HTTP request sent straight to the server
    (``rule`` an HTTP purpose: certificate checks on 80) answered by a redirect
    (:data:`REDIRECT_STATUSES`) to another site: a captive portal or web filter sending the
    request to its own page (newcomer 36 F6: a 302 to ``http://portal.corp.example/login`` counted
    as a working CRL download). Another site: the ``Location`` (``http_location``) names a host
    that is neither the one asked (``http_host``, else the responder's address) nor under the
    rule's host mask, nor, without a mask, of the same parent domain (``crl3.digicert.com`` to
    ``crl4.digicert.com``). A relative ``Location``, or none read: None (the site's own
    redirect). The detail reads as :func:`_proxy_refusal`'s for a filter's refusal, so the
    report advises it with them (:data:`kscc_traffic.report.HTTP_REFUSAL`)."""
    status = str(row.get("http_status") or "")
    where = str(row.get("http_location") or "")
    if status[:3] not in REDIRECT_STATUSES or "://" not in where[:12]:
        return None
    try:
        to = (urllib.parse.urlsplit(where).hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    asked, _ = split_host_port(str(row.get("http_host") or ""))
    asked = (asked or str(row["resp_h"])).rstrip(".").lower()
    if not to or to == asked or (rule.host_mask and under_mask(to, rule.host_mask)):
        return None
    if not rule.host_mask and not is_ip_literal(to) and not is_ip_literal(asked) \
            and to.split(".")[-2:] == asked.split(".")[-2:]:
        return None
    server = endpoint_text(row["resp_h"], int(row["resp_p"]))
    reason = row.get("http_reason") or ""
    said = f' "{reason}"' if reason else ""
    return ("blocked", "rejected", f"the server {server} answered {status}{said} to the request for "
            f"{_direct_target(row)} (a transparent web filter or captive portal: a redirect to {where}, "
            "another site)")


def _page_answer(row: dict, rule, target: str = "") -> tuple[str, str, str] | None:
    """(``blocked``, ``rejected``, detail) of a plain HTTP request for certificate status data or a
    CA certificate (a CRL, an OCSP response: ``rule`` an HTTP purpose, certificate checks on 80)
    answered 2xx with an HTML page (internal column ``http_page``, :func:`.http.page_media_type`):
    a web filter's block page or a captive portal's login page served in the server's place with
    a success status (break-it s54 icept #7a: a CRL request answered ``200 OK`` ``text/html`` was
    a verified certificate check). ``target``: the ``proxy_target`` of a request sent to an
    explicit proxy in absolute-form (``GET http://crl3.digicert.com/x.crl``: the proxy's page),
    '' for one sent straight to the server. The detail reads as a filter's refusal
    (:data:`kscc_traffic.report.HTTP_REFUSAL` for the direct one), so the report advises it with
    them. None when ``http_page`` is empty or the rule is not an HTTP one."""
    page = str(row.get("http_page") or "")
    status = str(row.get("http_status") or "")
    if not page or rule.app_protocol != "http" or status[:1] != "2":
        return None
    who = f"the {'proxy' if target else 'server'} {endpoint_text(row['resp_h'], int(row['resp_p']))}"
    request = _proxy_request(target) if target else f"the request for {_direct_target(row)}"
    by = "the proxy's web filter or a captive portal" if target else "a transparent web filter or captive portal"
    return "blocked", "rejected", f"{who} answered {status} to {request} ({by}: {page}, {PAGE_SERVED})"


def _later_refusal(row: dict) -> tuple[str, str, str] | None:
    """(``blocked``, ``rejected``, detail) of a plain HTTP connection sent straight to the server
    whose first request was answered 2xx/3xx and a later one refused by a filter's status (internal
    column ``http_later``, :func:`.inspect` with :func:`.http.later_answers`: "403 2 /x.crl"): a
    web filter allowing one URL of a host and refusing another on the same keep-alive connection
    (break-it s55 tls #6: only the first answer was judged). The detail reads as
    :func:`_proxy_refusal`'s for a filter's refusal (report.HTTP_REFUSAL). None without one."""
    later = str(row.get("http_later") or "").split(" ", 2)
    if len(later) < 3 or not later[1].isdigit():
        return None
    status, k, path = later
    server = endpoint_text(row["resp_h"], int(row["resp_p"]))
    url = _direct_target(row) + (path if path.startswith("/") else "")
    n = int(k)
    nth = {2: "2nd", 3: "3rd"}.get(n, f"{n}th")
    return ("blocked", "rejected", f"the server {server} answered {status} to the request for {url} (a transparent web "
            f"filter, or the server refusing it), the {nth} request on this connection, after "
            f"{row.get('http_status')} to the first: a filter allowing one URL of a host and refusing another?")


#: how the detail of :func:`_page_answer` ends (report.proxy_refused: a proxy's page is no target
#: reached)
PAGE_SERVED = "its block or login page served in the server's place"


def _direct_target(row: dict) -> str:
    """``http://host:port`` of a plain HTTP request sent straight to the server, as a detail
    names it: the host and port of its ``Host`` header (``http_host``; the port defaults to
    ``resp_p``), else the responder's address. Only an IPv6 literal is put in brackets: a name
    from the packets holding ``:`` (a forged or damaged Host) is shown as its text, never as an
    address (session 62's testers: ``http://[evil:crl:digicert.com]:80``)."""
    host, port = split_host_port(str(row.get("http_host") or ""))
    host = host or str(row["resp_h"])
    port = int(row["resp_p"]) if port is None else port
    return f"http://[{host}]:{port}" if ":" in host and is_ip_literal(host) else f"http://{host}:{port}"


def _number(row: dict, key: str, kind=float, default=0):
    """``kind(row[key])``, or ``default`` when the column is missing or empty (tables built
    without the internal columns ``quiet_s``, ``tunnel_resp_bytes``)."""
    try:
        return kind(row.get(key) or default)
    except (TypeError, ValueError):
        return default


def _seconds(row: dict, key: str) -> float:
    """``float(row[key])``, -1.0 when the column is missing or empty: as :func:`_number` with that
    default, but a 0 is a value (a TLS handshake reset 0.00 s after its ClientHello, its
    stamps within one clock tick), not an empty cell."""
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value):
        return -1.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return -1.0


def _binary_text(row: dict) -> str:
    """The server's non-TLS, non-text answer for a detail, from ``server_binary`` (the hex of its
    first bytes, at most 8: :func:`.inspect._first_bytes_text`) and ``resp_bytes`` (how many
    bytes the server sent in all): ``"67 bytes, the first 8: 80 81 … 87"``, or ``"3 bytes: 00 01
    02"`` when all are shown; ``"first bytes …"`` when the count is unknown or smaller than what
    is shown (a table without it)."""
    shown = str(row.get("server_binary") or "")
    n_shown = len(shown.split())
    total = _number(row, "resp_bytes", int, -1)
    if total < n_shown or total <= 0:
        return f"first bytes {shown}"
    if total == n_shown:
        return f"{total} byte{'s' if total != 1 else ''}: {shown}"
    return f"{total} bytes, the first {n_shown}: {shown}"


def _orig_sent_data(row: dict) -> bool:
    """Whether the originator of a TCP flow row sent payload: a data packet in its ``history``
    (``D``: a packet with neither SYN, FIN nor RST carrying payload; a keep-alive's one old byte
    too), or ``orig_bytes`` above 0 (above 1 when ``partial``), for payload carried only on a
    SYN (TCP Fast Open) or a FIN, for which Zeek writes no ``D``. In a partial flow one byte of
    size may be a keep-alive at SND.NXT - 1 and no byte sent (as
    :func:`kscc_traffic.flows.carried_data`). A RST's text counts in neither (not part of the
    stream). Reads ``history``, ``orig_bytes``, ``partial`` (missing: '' and 0)."""
    if "D" in str(row.get("history") or ""):
        return True
    return _number(row, "orig_bytes", int, 0) > (1 if row.get("partial") else 0)


def _close_wait_text(d: float) -> str:
    """The wait (seconds) before a TLS handshake's close as :func:`_who_closed` prints it: to
    the hundredth ("0.57"), but a close sooner than 5 ms after the flight it follows to the
    millisecond as :func:`_seconds_text` ("0.001"), and one below half a millisecond, or stamped
    at or before it (0: two capture ports' clocks apart), "less than 0.001", not "0.00": a reset
    that quick comes from a device near the capture point, not a server a WAN away (break-it s52
    v6 #2)."""
    if d < 0.0005:
        return "less than 0.001"
    return _seconds_text(d) if d < 0.005 else f"{d:.2f}"


def _seconds_text(d: float) -> str:
    """A duration (seconds) as the details print it: to the millisecond below 0.95 s ("0.064"),
    "less than 0.001" when above 0 but below half a millisecond (a proxy on the same host; not
    "0."), else to a tenth ("12.3", "0.0"); :func:`_verdict_keys` groups flows by this same text."""
    if 0 < d < 0.0005:
        return "less than 0.001"
    return f"{d:.3f}".rstrip("0") if 0 < d < 0.95 else f"{d:.1f}"


def _quiet(row: dict) -> float:
    """``quiet_s`` of a flow row: seconds the capture is known to have gone on after the flow's
    last packet, at most :data:`TLS_SILENCE_S` (0 when unknown or absent; see
    :func:`kscc_traffic.analyze.analyze_batch`)."""
    return _number(row, "quiet_s", float, 0.0)


#: how the detail of a CONNECT tunnel the proxy opened and then closed before the ClientHello
#: starts (:func:`_empty_tunnel_closed`; not "the proxy …": no refusal of the CONNECT, which
#: report.PROXY_REFUSAL reads, but a failure inside the opened tunnel, advised as one)
TUNNEL_CLOSED_EMPTY = "TLS handshake not started"


def _empty_tunnel_closed(row: dict, target: str, state: str) -> tuple[str, str, str] | None:
    """(``blocked``, ``tls_failed``, detail starting with :data:`TUNNEL_CLOSED_EMPTY`) of a CONNECT the proxy answered 2xx, then closed or
    reset (the flow's responder first: :func:`_responder_closed_first`) before the client sent a
    byte through the tunnel (``client_proto`` and ``server_proto`` '', ``tunnel_resp_bytes`` 0)
    and less than :data:`TLS_SILENCE_S` after the proxy's 2xx answer (internal column
    ``tunnel_close_s``, :func:`.inspect._tunnel_close`: from that answer to the proxy's own first
    FIN or RST; a slow proxy answering after 5 s and closing at once is named too; a table
    without it, or -1 there: ``duration``, from the connection's start, which is never shorter): the agent never got to send its ClientHello.
    None otherwise: an idle tunnel closed later (a proxy's idle timeout), the client closing
    first, a request in absolute-form, bytes the capture cut or lost (``payload_cut``,
    ``partial``). Reads ``http_status``, ``history``, ``tunnel_close_s``, ``duration``,
    ``resp_h``, ``resp_p``."""
    if target.startswith(_ABSOLUTE) or not str(row.get("http_status") or "").startswith("2") \
            or row.get("client_proto") or row.get("server_proto") or row.get("partial") \
            or row.get("payload_cut") or state not in _CLOSED_STATES \
            or _number(row, "tunnel_resp_bytes", int, 0) > 0:
        return None
    how = _responder_closed_first(str(row.get("history") or ""))
    after = _number(row, "tunnel_close_s", float, -1.0)
    since, when = (after, "that answer") if after >= 0 else \
        (_number(row, "duration", float, 0.0), "the connection began")
    if not how or since >= TLS_SILENCE_S:
        return None
    return ("blocked", "tls_failed", f"{TUNNEL_CLOSED_EMPTY}: the proxy {endpoint_text(row['resp_h'], int(row['resp_p']))} "
            f"opened the tunnel of {_proxy_request(target)} ({row.get('http_status')}), then {how} it ({state}) "
            f"{_seconds_text(since)} s after {when}, before the client sent its ClientHello "
            "(the proxy failing to reach the target, or refusing it after all)")


def _proxy_closed_tunnel(row: dict, state: str) -> str:
    """For a ClientHello sent inside a CONNECT tunnel the proxy opened: ``the proxy <h>:<p>
    closed the tunnel (<state>)`` (``reset`` for a RST) when the proxy's end (the flow's
    responder) closed first (:func:`_responder_closed_first` on ``history``), so the detail names
    who ended it (the proxy, or what it relayed from the server: the capture shows only the
    proxy), ``without a byte from the server`` added when none came through the tunnel; '' when
    the client closed first or nothing closed. Reads ``history``, ``resp_h``, ``resp_p``,
    ``server_proto``, ``tunnel_resp_bytes``."""
    how = _responder_closed_first(str(row.get("history") or ""))
    if not how or state not in _CLOSED_STATES:
        return ""
    silent = not row.get("server_proto") and _number(row, "tunnel_resp_bytes", int, 0) <= 0
    return (f"the proxy {endpoint_text(row['resp_h'], int(row['resp_p']))} {how} the tunnel ({state})"
            + (" without a byte from the server" if silent else ""))


def _responder_closed_first(history: str) -> str:
    """From a Zeek history: ``closed`` when the responder sent a FIN (``f``) and ``reset`` when it
    sent a RST (``r``) before the originator did either (``F``/``R``), else ''. (``I``/``i``, a
    FIN+RST packet: its FIN first.)"""
    for ch in history_plain(history).lstrip("^"):
        if ch in "FR":
            return ""
        if ch == "f":
            return "closed"
        if ch == "r":
            return "reset"
    return ""


#: answers to a ClientHello that redirect (RFC 9110 §15.4: 301, 302, 303, 307, 308): what a
#: captive portal or web filter sends instead of a ServerHello; ``blocked``/``rejected`` as
#: :data:`FILTER_STATUSES` are (another cleartext answer, a 400 from a transparent proxy or a
#: web server, stays ``unexpected``/``not_tls``: something else answers on the port)
REDIRECT_STATUSES = ("301", "302", "303", "307", "308")
#: the status a captive portal answers with (RFC 6585 §6, 511 Network Authentication Required: the
#: network wants a login or the acceptance of its terms first; one of :data:`FILTER_STATUSES`)
PORTAL_STATUS = "511"
#: what a ClientHello answered by it says after "where TLS is documented: "
PORTAL_ANSWER = "a captive portal's answer (Network Authentication Required: the network wants a login first)"


#: what the detail of a proxy's 407 to a request that carried credentials says (internal
#: ``proxy_auth``); report.readiness advises the agent's proxy account by it
PROXY_CREDENTIALS_REFUSED = "the proxy refused the credentials the agent sent"
#: what the detail of a proxy's 401 to a CONNECT that carried no credentials says after "without
#: credentials: " (:func:`proxy_login`: its login, as a 407); report.readiness advises the
#: agent's proxy account by it
PROXY_WANTS_LOGIN = "the proxy wants authentication (its 401 to a CONNECT is its login, as a 407)"


def _proxy_refusal(row: dict, target: str, direct: bool = False) -> tuple[str, str, str] | None:
    """(verdict, reason, detail) of a CONNECT flow the proxy did not open a tunnel for: an
    answer other than 2xx (``rejected``), the connection closed or reset by the proxy before it
    answered (``rejected``), no answer for :data:`TLS_SILENCE_S` or more (``no_answer``), an
    answer that is no HTTP response (``rejected``), the client closing before any answer
    (``no_answer``); None when the tunnel was opened (2xx) or the answer may still come. Reads
    ``http_status``, ``http_reason`` (its reason phrase, quoted after the code), ``resp_bytes``, ``history``, ``duration``, ``resp_h``, ``resp_p``. The
    detail names the request as :func:`_proxy_request` does (a request in absolute-form too).
    ``direct``: the request went straight to the server (no proxy, see :func:`_proxy_answer`):
    only the answers of :data:`FILTER_STATUSES` refuse it, the detail names the server, and an
    answer without a status line is not judged here (None: its bytes may not have been
    captured)."""
    proxy = f"the {'server' if direct else 'proxy'} {endpoint_text(row['resp_h'], int(row['resp_p']))}"
    request = _proxy_request(target)
    status = row.get("http_status") or ""
    if status:
        if status.startswith("2") or direct and status[:3] not in FILTER_STATUSES:
            return None
        hint = (" (a transparent web filter, or the server refusing it)" if direct and status[:3] != PORTAL_STATUS
                else " (a transparent web filter or captive portal: 511 is a captive portal's answer, the network "
                     "wants a login first)" if direct else "")
        reason = row.get("http_reason") or ""
        said = f' "{reason}"' if reason else ""
        creds = str(row.get("proxy_auth") or "").rsplit(None, 1)
        login = not direct and proxy_login(status, target)
        if login and len(creds) == 2:
            # (the request it refused carried credentials: the proxy refused them, not asked for
            # them; break-it s56 v6 #11; a 401 to a CONNECT too, tinyproxy's: break-it s57 #8)
            asked = f", request {creds[1]} of the connection" if creds[1] != "1" else ""
            hint = f" carrying credentials (Proxy-Authorization: {creds[0]}{asked}): {PROXY_CREDENTIALS_REFUSED}"
        elif login and status != "407":
            hint = f" without credentials: {PROXY_WANTS_LOGIN}"
        return "blocked", "rejected", f"{proxy} answered {status}{said} to {request}{hint}"
    if int(row.get("resp_bytes", 0)) > 0:
        if direct:
            return None
        return "blocked", "rejected", f"{proxy} answered {request} with no HTTP status line"
    how = _responder_closed_first(str(row.get("history") or ""))
    if how:
        return "blocked", "rejected", f"{proxy} {how} the connection without answering {request}"
    duration = float(row.get("duration", 0))
    if duration >= TLS_SILENCE_S:
        return "blocked", "no_answer", f"{proxy} did not answer {request} for {duration:.1f} s"
    # (a client closing a plain HTTP request sooner is no proof: it may have cancelled it)
    if not direct and any(ch in "FR" for ch in history_plain(str(row.get("history") or "")).lstrip("^")):
        return ("blocked", "no_answer",
                f"{proxy} did not answer {request}; the client gave up after {_seconds_text(duration)} s")
    if duration + _quiet(row) >= TLS_SILENCE_S:
        return ("blocked", "no_answer", f"{proxy} did not answer {request} for {TLS_SILENCE_S:g} s "
                "or more, the capture going on")
    return None


#: a proxy's ``407 Proxy Authentication Required`` whose client asked the same proxy for the same
#: target again on another connection starting at most this long (s) after the 407's connection
#: ended, and got it passed on, was a round of the proxy's authentication (NTLM and Negotiate
#: take 2-3 connections when the proxy closes after each 407): :func:`proxy_auth_retries`
AUTH_RETRY_S = 30.0
#: how the detail of such a 407 starts (its verdict ``ok``, reason '')
PROXY_AUTH_ROUND = "proxy authentication round"
#: the internal column that may name, per flow, the uid of a retry found outside the table
#: (:mod:`kscc_traffic.chunked`: the retry left with another batch); '' elsewhere
PROXY_RETRY = "proxy_retry"


#: the status a small proxy (tinyproxy…) answers a CONNECT with when it wants authentication, in
#: place of ``407`` (RFC 9110 §15.5.2 is the origin server's login; the origin server cannot
#: answer a CONNECT, so it is the proxy's): :func:`proxy_login`
PROXY_LOGIN_401 = "401"


def proxy_login(status, target) -> bool:
    """Whether a proxy's answer ``status`` (``http_status`` text) to a request for ``target``
    (``proxy_target``) is its login, asking for (or refusing) credentials: ``407 Proxy
    Authentication Required``, or ``401 Unauthorized`` to a CONNECT (tinyproxy answers so; a 401
    to a request in absolute-form, ``GET http://…``, may be the origin server's, passed on)."""
    status, target = str(status or ""), str(target or "")
    return status == "407" or (status == PROXY_LOGIN_401 and target != "" and not target.startswith(_ABSOLUTE))


def _proxy_passed_on(target: str, status: str) -> bool:
    """Whether a proxy passed a request on (as :func:`_proxy_answer` decides): ``status`` 2xx,
    or 3xx for a request in absolute-form (``target`` ``http://…``)."""
    return status[:1] == "2" or (target.startswith(_ABSOLUTE) and status[:1] == "3")


def _columns(flows: pd.DataFrame, names) -> dict:
    """``{name: flows[name].to_numpy()}`` for each of ``names`` the table has, read at once
    (:func:`~kscc_traffic.flows.arrays_of`: ~15 µs for a dozen columns, where ``flows[name]``
    costs ~15-35 µs each); ``np.asarray(a, dtype)`` of one is its ``to_numpy(dtype)``."""
    have = flows.columns
    return arrays_of(flows, [c for c in dict.fromkeys(names) if c in have])


def proxy_auth_retries(flows: pd.DataFrame) -> np.ndarray:
    """Per flow (object array of ``str``): the uid of the connection on which a proxy's 407 was
    answered by a retry the proxy accepted, '' where none. A TCP flow whose ``http_status`` is
    the proxy's login (:func:`proxy_login`: ``407``, or ``401`` to a CONNECT) through an explicit
    proxy (``proxy_target``) gets the uid of the first other TCP
    flow of the same client (``orig_h``) to the same proxy (``resp_h``, ``resp_p``) for the same
    ``proxy_target`` (and ``capture``, when the table has one) that began after it and at most
    :data:`AUTH_RETRY_S` after it ended (``ts_ns`` + ``duration`` s) and that the proxy passed
    on (:func:`_proxy_passed_on`). Reads ``proto``, ``uid``, ``ts_ns``, ``duration``,
    ``orig_h``, ``resp_h``, ``resp_p``, ``proxy_target``, ``http_status``; all '' when one is
    missing. A non-empty :data:`PROXY_RETRY` column of the table counts as found (a retry seen
    in another batch). A login answer to a request that carried Basic credentials (internal
    ``proxy_auth``: ``Basic <n>``) gets none: Basic takes one request, so the proxy refused that
    account, whatever a retry with another one got (NTLM, Negotiate and Digest take rounds)."""
    n = len(flows)
    out = np.full(n, "", dtype=object)
    need = ("proto", "uid", "ts_ns", "duration", "orig_h", "resp_h", "resp_p", "proxy_target", "http_status")
    if not n or any(c not in flows.columns for c in need):
        return out
    got = _columns(flows, (*need, "capture", PROXY_RETRY, "proxy_auth"))
    target = np.asarray(got["proxy_target"], dtype=object)
    proto = np.asarray(got["proto"], dtype=object)
    via = np.flatnonzero((target != "") & (proto == "tcp") & pd.notna(target))
    if not len(via):
        return out
    status = [str(x or "") for x in np.asarray(got["http_status"], dtype=object)[via].tolist()]
    creds = np.asarray(got["proxy_auth"], dtype=object) if "proxy_auth" in got else None
    # (a Basic credential refused is no round: Basic has one leg, so the retry sent another
    # account; NTLM, Negotiate and Digest take rounds: break-it s57 #8)
    asked = [i for i, c in zip(via.tolist(), status) if proxy_login(c, target[i])
             and not (creds is not None and _basic_refused(creds[i]))]
    if not asked:
        return out
    cap = np.asarray(got["capture"], dtype=object) if "capture" in got else np.full(n, "", object)
    oh, rh = np.asarray(got["orig_h"], dtype=object), np.asarray(got["resp_h"], dtype=object)
    rp, ts = got["resp_p"], np.asarray(got["ts_ns"], dtype=np.int64)
    dur, uid = np.asarray(got["duration"], dtype=float), np.asarray(got["uid"], dtype=object)

    def key(i: int) -> tuple:
        return (cap[i], oh[i], rh[i], int(rp[i]), target[i])
    passed: dict[tuple, list[int]] = {}
    for i, c in zip(via.tolist(), status):
        if _proxy_passed_on(str(target[i]), c):
            passed.setdefault(key(i), []).append(i)
    for i in asked:
        d = float(dur[i])
        end = int(ts[i]) + int((d if d > 0 else 0.0) * 1e9) + int(AUTH_RETRY_S * 1e9)
        later = [j for j in passed.get(key(i), ()) if int(ts[i]) < int(ts[j]) <= end]
        if later:
            out[i] = str(uid[min(later, key=lambda j: (int(ts[j]), str(uid[j])))])
    if PROXY_RETRY in got:
        given = np.asarray(got[PROXY_RETRY], dtype=object)
        for i in asked:
            if not out[i] and isinstance(given[i], str) and given[i]:
                out[i] = given[i]
    return out


def _basic_refused(creds) -> bool:
    """Whether an internal ``proxy_auth`` value (``"<scheme> <requests>"``) names Basic credentials."""
    return isinstance(creds, str) and creds.split(" ", 1)[0].lower() == "basic"


def auth_round_detail(row: dict, retry: str) -> str:
    """The detail of a 407 that was a proxy authentication round (:func:`proxy_auth_retries`):
    ``proxy authentication round; the retry on <uid> was accepted (the proxy <h>:<p> answered
    407 to CONNECT <target>)``, an IPv6 proxy's address in brackets (``[2001:db8::1]:3128``);
    the status is the row's ``http_status`` (a 401 to a CONNECT: :func:`proxy_login`; 407 without
    that column). Reads ``resp_h``, ``resp_p``, ``proxy_target``, ``http_status``."""
    said = str(row.get("http_status") or "407")
    return (f"{PROXY_AUTH_ROUND}; the retry on {retry} was accepted (the proxy "
            f"{endpoint_text(row['resp_h'], int(row['resp_p']))} answered {said} to "
            f"{_proxy_request(str(row['proxy_target']))})")


def _note_auth_rounds(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Judge again (``res`` rows, in place) each 407 of a proxy that :func:`proxy_auth_retries`
    finds answered by an accepted retry on another connection: ``ok``, reason '' (as a 407
    answered on the same connection is: its flow's last answer is the 2xx; ``partial`` when its
    start was not captured), the detail from :func:`auth_round_detail`. A 407 judged otherwise
    than ``blocked``/``rejected`` (a target outside the mask, an undocumented port) keeps its
    verdict."""
    retry = proxy_auth_retries(flows)
    for i in np.flatnonzero(retry != "").tolist():
        parts = str(res[i, 2]).split(",")
        if res[i, 1] == "blocked" and parts[0] == "rejected":
            row = {c: flows[c].iat[i] for c in ("resp_h", "resp_p", "proxy_target", "http_status")}
            res[i, 1], res[i, 2] = "ok", "partial" if "partial" in parts else ""
            res[i, 3] = auth_round_detail(row, str(retry[i]))


#: a SYN answered by a stale connection (:data:`STALE_ANSWER`), reset by the client, whose retry on
#: the same 5-tuple (the same ISN where both are known) began at most this long (s) after the
#: reset attempt ended and connected, was a stale connection cleared, not a failure: the kernel's
#: own SYN retransmission within one connect() (Linux waits 1+2+4+8… s, Windows 3+6+12 s):
#: :func:`stale_retries`
STALE_RETRY_S = 30.0
#: how the detail of such a reset attempt starts (its verdict ``ok``, reason ''); a ``host_mismatch``
#: flow keeps its verdict and says this instead of :data:`MISMATCH_FAILED`
STALE_CLEARED = "stale connection cleared"
#: the internal column that may give, per flow, the retry found outside the table (a tuple
#: ``(ts_ns, uid)``: :mod:`kscc_traffic.chunked`, the retry left with another batch); None elsewhere
STALE_RETRY = "stale_retry"
#: the columns outside :data:`_JUDGE_COLUMNS` that :func:`note_auth_rounds` reads besides them
#: (the ISN that pairs a stale connection's reset attempt with its retry: :func:`stale_retries`),
#: kept with a table classified apart (``analyze_packets(internal=True)``: the live session)
_RETRY_COLUMNS = ("syn_isn",)
#: the states of a retry that connected (a handshake's SYN-ACK acknowledged, however it ended)
_CONNECTED_STATES = frozenset(("SF", "S1", "S2", "S3", "RSTO", "RSTR"))


def retry_connected(conn_state: str, history: str, syn_answer: str) -> bool:
    """Whether a TCP flow is a connection attempt that connected, as :func:`stale_retries`
    wants of a retry: its history starts with the originator's SYN (:func:`history_plain`), its
    ``conn_state`` is one of an established connection (``SF``, ``S1``, ``S2``, ``S3``,
    ``RSTO``, ``RSTR``) and its SYN was not itself answered by a stale connection
    (``syn_answer`` '': :func:`kscc_traffic.inspect._syn_answers`)."""
    return (str(conn_state) in _CONNECTED_STATES and not syn_answer
            and history_plain(str(history or "")).lstrip("^").startswith("S"))


def stale_retries(flows: pd.DataFrame, res: np.ndarray) -> list:
    """Per flow (list, None where none): ``(ts_ns, uid)`` of the retry that cleared a stale
    connection, for each TCP flow judged ``blocked``/``rejected`` because its SYN was answered
    by a stale connection (``res[i, 3]`` starting with :data:`STALE_ANSWER`), or
    ``unexpected``/``host_mismatch`` saying so after :data:`MISMATCH_FAILED`: the first later
    TCP flow on the same 5-tuple (``orig_h``, ``orig_p``, ``resp_h``, ``resp_p``; and the VLAN
    stack, :func:`kscc_traffic.flows.vlan_key`, and ``capture`` when the table has them) that began after it and at most :data:`STALE_RETRY_S`
    after it ended (``ts_ns`` + ``duration`` s), whose ``syn_isn`` equals its own when the table
    has that column (a SYN sent again: the same connect()), and that connected
    (:func:`retry_connected`; ``syn_answer`` read where the table has it, and no
    :data:`STALE_ANSWER` in its ``res`` detail). A non-empty :data:`STALE_RETRY` column counts
    as found (the retry left with another batch of a chunked reading). ``res``: rows
    ``(purpose, verdict, reason, detail)`` as :func:`classify` fills them."""
    n = len(flows)
    out: list = [None] * n
    need = ("proto", "uid", "ts_ns", "duration", "orig_h", "orig_p", "resp_h", "resp_p", "conn_state", "history")
    if not n or any(c not in flows.columns for c in need):
        return out
    detail = res[:, 3]
    got = _columns(flows, (*need, STALE_RETRY, "capture", "syn_answer"))
    proto = np.asarray(got["proto"], dtype=object)
    tcp = proto == "tcp"
    # (the few blocked or unexpected TCP rows looked at one by one, not every row of a batch)
    stale = [i for i in np.flatnonzero(tcp & ((res[:, 1] == "blocked") | (res[:, 1] == "unexpected"))).tolist()
             if _stale_reset(res[i])]
    if not stale:
        return out
    given = np.asarray(got[STALE_RETRY], dtype=object) if STALE_RETRY in got else None
    cols = {c: np.asarray(got[c], dtype=object) for c in ("orig_h", "resp_h", "conn_state", "history", "uid")}
    op, rp = got["orig_p"], got["resp_p"]
    ts, dur = np.asarray(got["ts_ns"], dtype=np.int64), np.asarray(got["duration"], dtype=float)
    stack = vlan_key(flows)
    extra = [np.asarray(got[c], dtype=object) for c in ("capture",) if c in got] + \
        ([stack] if stack is not None else [])
    # (-1 where not known: a row of a table concatenated with one that had no such column)
    isn = flows["syn_isn"].fillna(-1).to_numpy(np.int64) if "syn_isn" in flows.columns else None
    answer = np.asarray(got["syn_answer"], dtype=object) if "syn_answer" in got else None

    def key(i: int) -> tuple:
        return (cols["orig_h"][i], int(op[i]), cols["resp_h"][i], int(rp[i]), *(str(e[i]) for e in extra))
    wanted = {key(i) for i in stale}
    retries: dict[tuple, list[int]] = {}
    ports = np.fromiter({int(op[i]) for i in stale}, np.int64)
    for j in np.flatnonzero(tcp & np.isin(op, ports)).tolist():
        if key(j) in wanted and STALE_ANSWER not in str(detail[j]) and retry_connected(
                cols["conn_state"][j], cols["history"][j], answer[j] if answer is not None else ""):
            retries.setdefault(key(j), []).append(j)
    for i in stale:
        d = float(dur[i])
        end = int(ts[i]) + int((d if d > 0 else 0.0) * 1e9) + int(STALE_RETRY_S * 1e9)
        later = [j for j in retries.get(key(i), ()) if int(ts[i]) < int(ts[j]) <= end
                 and (isn is None or (int(isn[i]) >= 0 and int(isn[j]) == int(isn[i])))]
        if later:
            j = min(later, key=lambda j: (int(ts[j]), str(cols["uid"][j])))
            out[i] = (int(ts[j]), str(cols["uid"][j]))
        elif given is not None and isinstance(given[i], tuple):
            out[i] = given[i]
    return out


def _stale_reset(r) -> bool:
    """Whether a ``res`` row (purpose, verdict, reason, detail) is a SYN answered by a stale
    connection: ``blocked``/``rejected`` with a detail starting with :data:`STALE_ANSWER`, or a
    ``host_mismatch`` whose connection failed so (:data:`MISMATCH_FAILED`)."""
    reason = str(r[2]).split(",")[0]
    if r[1] == "blocked" and reason == "rejected":
        return str(r[3]).startswith(STALE_ANSWER)
    return r[1] == "unexpected" and reason == "host_mismatch" and \
        f"; {MISMATCH_FAILED} (rejected): {STALE_ANSWER}" in str(r[3])


def stale_cleared_detail(ts_ns: int, retry: tuple) -> str:
    """The detail of a reset attempt a retry cleared (:func:`stale_retries`): ``stale connection
    cleared: the client reset the old connection's answer to its SYN and the SYN sent again at
    08:38:53.777 UTC (3.061 s later, on <uid>) connected``. ``ts_ns``: the attempt's start;
    ``retry``: ``(ts_ns, uid)`` of the retry."""
    at, uid = int(retry[0]), str(retry[1])
    sec, ns = divmod(at, 10**9)
    clock = pd.Timestamp(sec, unit="s").strftime("%H:%M:%S") if abs(sec) < 9.2e9 else "?"
    return (f"{STALE_CLEARED}: the client reset the old connection's answer to its SYN and the SYN sent "
            f"again at {clock}.{ns // 10**6:03d} UTC ({_seconds_text(max(at - int(ts_ns), 0) / 1e9)} s later, "
            f"on {uid}) connected")


def _note_stale_retries(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Judge again (``res`` rows, in place) each SYN answered by a stale connection whose retry
    connected (:func:`stale_retries`): ``blocked``/``rejected`` becomes ``ok``, reason '', the
    detail :func:`stale_cleared_detail` (as a proxy's 407 answered by an accepted retry:
    :func:`_note_auth_rounds`); a ``host_mismatch`` keeps its verdict, its detail saying that
    instead of the failure. A reset attempt whose retry did not connect keeps its verdict."""
    found = stale_retries(flows, res)
    if found.count(None) == len(found):     # (none found: counted in C, not a generator per row)
        return
    ts = flows["ts_ns"].to_numpy(np.int64)
    for i, retry in enumerate(found):
        if retry is None:
            continue
        said = stale_cleared_detail(int(ts[i]), retry)
        if res[i, 1] == "blocked":
            res[i, 1], res[i, 2], res[i, 3] = "ok", "", said
        else:
            head = str(res[i, 3]).split(f"; {MISMATCH_FAILED} (rejected): {STALE_ANSWER}", 1)[0]
            res[i, 3] = f"{head}; {said}"


#: how the detail of a SYN answered by a TCP reset starts (Zeek's ``REJ``, ``blocked``/``rejected``;
#: a distribution point's reset too: :data:`DP_RESET` starts so)
REJ_DETAIL = "the SYN was answered by a TCP reset"
#: a SYN answered by a TCP reset (:data:`REJ_DETAIL`) followed by a connection from the same client
#: to the same server address and port (another source port: a new connect()) that began at most
#: this long (s) after the refused attempt ended and connected: the refusal was real but passing
#: (the service restarting, a load balancer briefly without a backend), the port is open:
#: :func:`refused_retries`
REFUSED_RETRY_S = 30.0
#: how the detail of such a refused attempt starts (its verdict ``ok``, reason ''; a
#: ``host_mismatch`` flow keeps its verdict and says this instead of :data:`MISMATCH_FAILED`)
REFUSED_CLEARED = "refused at "
#: the internal column that may give, per flow, the retry of a refused attempt found outside the
#: table (a tuple ``(ts_ns, uid)``: :mod:`kscc_traffic.chunked`, the retry left with another
#: batch); None elsewhere
REFUSED_RETRY = "refused_retry"


def _refused_attempt(r) -> bool:
    """Whether a ``res`` row (purpose, verdict, reason, detail) is a SYN answered by a TCP reset:
    ``blocked``/``rejected`` with a detail starting with :data:`REJ_DETAIL`, or a
    ``host_mismatch`` whose connection failed so (:data:`MISMATCH_FAILED`)."""
    reason = str(r[2]).split(",")[0]
    if r[1] == "blocked" and reason == "rejected":
        return str(r[3]).startswith(REJ_DETAIL)
    return r[1] == "unexpected" and reason == "host_mismatch" and \
        f"; {MISMATCH_FAILED} (rejected): {REJ_DETAIL}" in str(r[3])


def _attempt_columns(flows: pd.DataFrame, got: dict) -> tuple:
    """What :func:`refused_retries` and :func:`family_fallbacks` read of the flows (``got``:
    :func:`_columns` of ``flows``) to pair a refused attempt with the connection that followed:
    ``history`` and ``uid`` (object arrays), ``ts_ns`` (int64, epoch ns), ``duration`` (float,
    s), the key's extra parts (a list of arrays: ``capture`` where the table has it, the VLAN
    stack, :func:`~kscc_traffic.flows.vlan_key`, where it has one) and ``syn_answer`` (object
    array, None where the table has none)."""
    history, uid = np.asarray(got["history"], dtype=object), np.asarray(got["uid"], dtype=object)
    ts, dur = np.asarray(got["ts_ns"], dtype=np.int64), np.asarray(got["duration"], dtype=float)
    stack = vlan_key(flows)
    extra = [np.asarray(got[c], dtype=object) for c in ("capture",) if c in got] + \
        ([stack] if stack is not None else [])
    answer = np.asarray(got["syn_answer"], dtype=object) if "syn_answer" in got else None
    return history, uid, ts, dur, extra, answer


def refused_retries(flows: pd.DataFrame, res: np.ndarray) -> list:
    """Per flow (list, None where none): ``(ts_ns, uid)`` of the connection that followed a
    refused attempt, for each TCP flow in Zeek's ``REJ`` state judged ``blocked``/``rejected``
    because its SYN was answered by a TCP reset (``res[i, 3]`` starting with :data:`REJ_DETAIL`),
    or ``unexpected``/``host_mismatch`` saying so after :data:`MISMATCH_FAILED`: the first later
    TCP flow from the same client to the same server address and port (``orig_h``, ``resp_h``,
    ``resp_p``; and ``vlan``, ``capture`` when the table has them; any source port: an
    application's retry is a new connect()) that began after it and at most
    :data:`REFUSED_RETRY_S` after it ended (``ts_ns`` + ``duration`` s) and connected
    (:func:`retry_connected`; ``syn_answer`` read where the table has it, and no
    :data:`STALE_ANSWER` in its ``res`` detail). A refused attempt followed only by refused ones
    gets None. A non-empty :data:`REFUSED_RETRY` column counts as found (the retry left with
    another batch of a chunked reading). ``res``: rows ``(purpose, verdict, reason, detail)`` as
    :func:`classify` fills them."""
    n = len(flows)
    out: list = [None] * n
    need = ("proto", "uid", "ts_ns", "duration", "orig_h", "resp_h", "resp_p", "conn_state", "history")
    if not n or any(c not in flows.columns for c in need):
        return out
    got = _columns(flows, (*need, REFUSED_RETRY, "capture", "syn_answer"))
    state = np.asarray(got["conn_state"], dtype=object)
    tcp = np.asarray(got["proto"], dtype=object) == "tcp"
    # (the few REJ rows judged blocked or unexpected looked at one by one)
    refused = [i for i in np.flatnonzero(tcp & (state == "REJ") & (
        (res[:, 1] == "blocked") | (res[:, 1] == "unexpected"))).tolist() if _refused_attempt(res[i])]
    if not refused:
        return out
    given = np.asarray(got[REFUSED_RETRY], dtype=object) if REFUSED_RETRY in got else None
    oh, rh = np.asarray(got["orig_h"], dtype=object), np.asarray(got["resp_h"], dtype=object)
    rp = got["resp_p"]
    history, uid, ts, dur, extra, answer = _attempt_columns(flows, got)

    def key(i: int) -> tuple:
        return (oh[i], rh[i], int(rp[i]), *(str(e[i]) for e in extra))
    wanted = {key(i) for i in refused}
    # (connections to the refused attempts' ports: numpy first; their servers and the keys then)
    cand = np.flatnonzero(tcp & np.isin(rp, np.fromiter({int(rp[i]) for i in refused}, np.int64)))
    servers, clients = {rh[i] for i in refused}, {oh[i] for i in refused}
    # (the state, server and client tested in that order over all candidates at once, in C: most
    # candidates are other clients' connections; a key is made only for the few left)
    for look, col in ((_CONNECTED_STATES, state), (servers, rh), (clients, oh)):
        if len(cand):
            cand = cand[np.fromiter(map(look.__contains__, col[cand].tolist()), bool, len(cand))]
    retries: dict[tuple, list[int]] = {}
    for j in cand.tolist():
        if key(j) in wanted and STALE_ANSWER not in str(res[j, 3]) and retry_connected(
                state[j], history[j], answer[j] if answer is not None else ""):
            retries.setdefault(key(j), []).append(j)
    for i in refused:
        d = float(dur[i])
        end = int(ts[i]) + int((d if d > 0 else 0.0) * 1e9) + int(REFUSED_RETRY_S * 1e9)
        later = [j for j in retries.get(key(i), ()) if int(ts[i]) < int(ts[j]) <= end]
        if later:
            j = min(later, key=lambda j: (int(ts[j]), str(uid[j])))
            out[i] = (int(ts[j]), str(uid[j]))
        elif given is not None and isinstance(given[i], tuple):
            out[i] = given[i]
    return out


def refused_cleared_detail(ts_ns: int, retry: tuple, detail: str = "") -> str:
    """The detail of a refused attempt a later connection followed (:func:`refused_retries`):
    ``refused at 08:38:53.777 UTC, the retry 3.061 s later connected (on <uid>): the SYN was
    answered by a TCP reset, a later connection from this client to the same address and port
    was accepted (its TCP handshake completed: the service restarting, a load balancer briefly
    without a backend?)``, then the hints
    of the attempt's own ``detail`` (which device sent the reset: :func:`.inspect.refused_hint`;
    "nothing listens on this port", wrong here, left out). ``ts_ns``: the attempt's start (its
    SYN); ``retry``: ``(ts_ns, uid)`` of the retry."""
    at, uid = int(retry[0]), str(retry[1])
    said = (f"{REFUSED_CLEARED}{_clock_text(int(ts_ns))} UTC, the retry "
            f"{_seconds_text(max(at - int(ts_ns), 0) / 1e9)} s later connected (on {uid}): {REJ_DETAIL}, a later "
            "connection from this client to the same address and port was accepted (its TCP handshake completed: "
            "the service restarting, a load balancer briefly without a backend?)")
    hints = []
    for h in str(detail).split("; ")[1:]:
        for means in (REFUSED_OWN_MEANS, REFUSED_OWN_MEANS_V6):
            if h.startswith(REFUSED_OWN) and f"): {means}" in h:
                h = h.split(f"): {means}", 1)[0] + ")"
        if h and not h.startswith(MISMATCH_FAILED):
            hints.append(h)
    return "; ".join([said, *hints])


def _clock_text(ns: int) -> str:
    """Epoch ``ns`` as the details print a moment: ``08:38:53.777`` (UTC; ``?`` out of range)."""
    sec, frac = divmod(int(ns), 10**9)
    clock = pd.Timestamp(sec, unit="s").strftime("%H:%M:%S") if abs(sec) < 9.2e9 else "?"
    return f"{clock}.{frac // 10**6:03d}"


def _note_refused_retries(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Judge again (``res`` rows, in place) each SYN answered by a TCP reset that a connection
    from the same client to the same address and port followed (:func:`refused_retries`):
    ``blocked``/``rejected`` becomes ``ok``, reason '', the detail :func:`refused_cleared_detail`
    (as a stale connection's reset attempt whose retry connected: :func:`_note_stale_retries`);
    a ``host_mismatch`` keeps its verdict, its detail saying that instead of the failure. A
    refused attempt followed only by refused ones (or by nothing) keeps its verdict."""
    found = refused_retries(flows, res)
    if found.count(None) == len(found):     # (none found: counted in C, not a generator per row)
        return
    ts = flows["ts_ns"].to_numpy(np.int64)
    for i, retry in enumerate(found):
        if retry is None:
            continue
        if res[i, 1] == "blocked":
            res[i, 1], res[i, 2], res[i, 3] = "ok", "", refused_cleared_detail(int(ts[i]), retry, str(res[i, 3]))
        else:
            head, failed = str(res[i, 3]).split(f"; {MISMATCH_FAILED} (rejected): ", 1)
            res[i, 3] = f"{head}; {refused_cleared_detail(int(ts[i]), retry, failed)}"


#: an IPv6 connection attempt refused by a TCP reset from no device nearer than the server
#: (:data:`REJ_DETAIL` with no :data:`~kscc_traffic.inspect.REFUSED_NEARER` nor
#: :data:`~kscc_traffic.inspect.REFUSED_OTHER` hint) followed, at most this long (s) after it
#: ended, by a TCP connection over IPv4 to the same server name and port that connected: a
#: dual-stack client's fallback (RFC 8305 happy eyeballs tries the next address at once after a
#: refusal, and at most 2 s (its longest Connection Attempt Delay) after an attempt still
#: unanswered): :func:`family_fallbacks` (newcomer s58 #1)
FALLBACK_S = 2.0
#: how the detail of such a refused attempt starts (its verdict ``ok``, reason '')
FALLBACK_CLEARED = "refused over IPv6 at "
#: what that detail says the refusal means, after the fallback
FALLBACK_MEANS = ("most likely the server's host does not take this port over IPv6, and it took the IPv4 connection: "
                  "nothing needs to be opened")
#: what the detail of such an attempt says where other clients connected to that name and port over
#: IPv4 in its window too (:func:`family_fallbacks`: a capture of several clients, a gateway's): the
#: connection paired may be another client's, not this one's fallback
FALLBACK_SHARED = ("other clients connected to that name and port over IPv4 then too (a capture of several clients: "
                   "it may be another client's connection, not proof that this one fell back)")
#: the internal column that may give, per flow, the IPv4 connection of a refused IPv6 attempt
#: found outside the table (a tuple ``(ts_ns, uid, resp_ttl, resp_ttl_out)``: :mod:`kscc_traffic.chunked`,
#: the connection left with another batch; ``resp_ttl`` its responder's first TTL, ``resp_ttl_out``
#: that packet's as captured leaving the capturing host, :data:`~kscc_traffic.flows.RESP_TTL_OUT`;
#: -1 unknown); None elsewhere
FALLBACK = "ipv6_fallback"
#: hops by which the reset of a refused IPv6 attempt with nothing of its sender's to compare it
#: with (no :data:`~kscc_traffic.inspect.REFUSED_OWN` hint) must have come from nearer than the
#: first packet of the server's answer on the IPv4 connection that followed (its SYN-ACK's TTL,
#: the internal ``resp_ttl``) for :func:`family_fallbacks` to name a device nearer than the server
#: (a site firewall refusing IPv6, the IPv4 connection passing it): no fallback, the attempt stays
#: blocked with that hint (review s59 #5). As :data:`~kscc_traffic.inspect.RESET_TTL_HOPS`:
#: the two families' paths to one server may differ by a hop or two
FALLBACK_NEARER_HOPS = 3


def _fallback_candidate(r) -> bool:
    """Whether a ``res`` row (purpose, verdict, reason, detail) is a SYN answered by a TCP reset
    with no sign of a device nearer than the server: ``blocked``/``rejected``, a detail starting
    with :data:`REJ_DETAIL` (not a distribution point's reset, :data:`DP_RESET`, whose advice is
    the distribution point's own) and holding neither :data:`~kscc_traffic.inspect.REFUSED_NEARER`
    nor :data:`~kscc_traffic.inspect.REFUSED_OTHER`."""
    d = str(r[3])
    return (r[1] == "blocked" and str(r[2]).split(",")[0] == "rejected" and d.startswith(REJ_DETAIL)
            and not d.startswith(DP_RESET) and REFUSED_NEARER not in d and REFUSED_OTHER not in d)


def _dropped_candidate(r) -> bool:
    """Whether a ``res`` row (purpose, verdict, reason, detail) is a SYN nothing answered:
    ``blocked``/``no_answer`` with a detail starting ``SYN sent`` (no answer from elsewhere, no
    ICMP error), not told already (no :data:`DROPPED_FALLBACK`: a table judged again, the live one)."""
    d = str(r[3])
    return r[1] == "blocked" and str(r[2]).split(",")[0] == "no_answer" and d.startswith("SYN sent ") \
        and DROPPED_FALLBACK not in d


#: what the detail of an IPv6 connection attempt nothing answered says after its client fell back
#: to IPv4 (:func:`dropped_fallback_detail`); the checklist counts it (``report.readiness``)
DROPPED_FALLBACK = "nothing answered over IPv6 (no reset, no ICMP error): the IPv6 path drops this port silently"


def dropped_fallback_detail(ts_ns: int, fallback: tuple, detail: str) -> str:
    """The detail of an IPv6 connection attempt nothing answered (``detail``: ``SYN sent 1 time,
    no answer``, the capture's end note, if any, left out: the client stopped waiting) that its
    client followed over IPv4 to the same server name and port within :data:`FALLBACK_S`
    (:func:`family_fallbacks`: happy eyeballs tries IPv4 after 250 ms without an answer):
    ``SYN sent 1 time, no answer; the client fell back to IPv4 0.2 s later (192.0.2.10:57848 ->
    198.51.100.10:23101, uid C…), which connected: nothing answered over IPv6 (…): the IPv6 path
    drops this port silently (a firewall on the way; only IPv6: the IPv4 connection passed)``.
    The verdict stays ``blocked``/``no_answer`` (a drop is no server's refusal: as a reset from a
    device nearer than the server, the IPv6 path is what is blocked). ``ts_ns``: the attempt's
    start; ``fallback``: as :func:`fallback_detail`'s."""
    head = _CUT_NOTE.sub("", str(detail))
    return (f"{head}; the client fell back to IPv4 {_seconds_text(max(int(fallback[0]) - int(ts_ns), 0) / 1e9)} s "
            f"later ({_fallback_which(fallback)}), which connected: {DROPPED_FALLBACK} (a firewall on the way; only IPv6: the IPv4 connection "
            "passed)")


def fallback_name(name) -> str:
    """The server name a refused IPv6 attempt and its IPv4 fallback are paired by: ``name``
    (``server_name``) lower case, without a trailing dot; '' when it names no host (empty, not
    text, an IP literal: an IPv4 and an IPv6 address of one server share nothing but its name)."""
    if not isinstance(name, str) or not name or is_ip_literal(name):
        return ""
    return name.lower().rstrip(".")


def fallback_nearer_hint(ttl: int, ref: int, uid: str) -> str:
    """The hint of a refused IPv6 attempt whose reset (hop limit ``ttl``) came from
    :data:`FALLBACK_NEARER_HOPS` or more nearer than the server's answer (TTL ``ref``) on the
    IPv4 connection ``uid`` to the same server name and port that followed
    (:func:`family_fallbacks`): it holds :data:`~kscc_traffic.inspect.REFUSED_NEARER`, as a
    nearer device's reset compared with the server's own IPv6 packets does."""
    h, h_ref = (int(x) for x in _hops(np.array([ttl, ref], np.int64)))
    d = h_ref - h
    return (f"the reset came from a device {d} hop{'s' if d != 1 else ''} {REFUSED_NEARER}hop limit {ttl} vs "
            f"TTL {ref} on its answer over IPv4 to the same name and port, {uid}): {REFUSED_PORT} over IPv6 "
            "(the IPv4 connection that followed passed that device: only IPv6 is refused there)")


def _fallback_which(fallback: tuple) -> str:
    """How a fallback's IPv4 connection is named in a detail (``fallback``: as
    :func:`family_fallbacks` gives it): ``192.0.2.10:43112 -> 198.51.100.10:23101, uid C…``, or
    ``on C…`` where its endpoints are not known."""
    shown = str(fallback[2]) if len(fallback) > 2 and fallback[2] else ""
    return f"{shown}, uid {fallback[1]}" if shown else f"on {fallback[1]}"


def endpoints_text(orig_h, orig_p, resp_h, resp_p) -> str:
    """A flow's endpoints as the table shows them: ``192.0.2.10:43112 -> 198.51.100.10:23101``
    (an IPv6 address in brackets; ports as ints, ``?`` where not one)."""
    def one(h, p) -> str:
        h = str(h)
        try:
            p = str(int(p))
        except (TypeError, ValueError, OverflowError):
            p = "?"
        return f"[{h}]:{p}" if ":" in h else f"{h}:{p}"
    return f"{one(orig_h, orig_p)} -> {one(resp_h, resp_p)}"


def other_client_after(clients: list) -> list:
    """Per position of ``clients`` (the clients, ``orig_h`` texts, of connections in time order):
    the position of the first later one of another client, -1 where none."""
    out, nxt = [-1] * len(clients), -1
    for x in range(len(clients) - 2, -1, -1):
        nxt = x + 1 if clients[x + 1] != clients[x] else out[x + 1]
        out[x] = nxt
    return out


def _ttl_value(x) -> int:
    """A TTL column's value as an int, -1 for anything that is none (NaN, None, not a number)."""
    try:
        return int(x)
    except (TypeError, ValueError, OverflowError):
        return -1


def _nearer_than_fallback(ttl, ref) -> bool:
    """Whether a reset of TTL (hop limit) ``ttl`` came :data:`FALLBACK_NEARER_HOPS` or more
    nearer than a packet of TTL ``ref``, or came with its initial hop limit (64, 128, 255: sent
    on the capture's own link) while ``ref`` crossed a router (ints; -1 or anything not an int:
    unknown, False)."""
    try:
        ttl, ref = int(ttl), int(ref)
    except (TypeError, ValueError):
        return False
    if ttl < 0 or ref < 0 or ttl > 255 or ref > 255:
        return False
    h, h_ref = (int(x) for x in _hops(np.array([ttl, ref], np.int64)))
    # (or a reset with its hop limit as sent, no router between its sender and the capture,
    # while the IPv4 server's answer crossed one or more: the capture's own gateway or firewall
    # refused it, as a router rejecting IPv6 with a reset does (real-stack s59 #1: 64 vs 63);
    # a capture on the server has both as sent)
    return h_ref - h >= FALLBACK_NEARER_HOPS or (h == 0 and h_ref >= 1)


def family_fallbacks(flows: pd.DataFrame, res: np.ndarray, nearer: list | None = None) -> list:
    """Per flow (list, None where none): ``(ts_ns, uid, endpoints, shared)`` of the IPv4
    connection a dual-stack client fell back to (``endpoints``: :func:`endpoints_text`, '' where
    the table has no ``orig_h``/``orig_p``; ``shared``: a connection of another client
    (``orig_h``) to the same name and port began in the window too, after it: a capture of
    several clients, where the one paired may be another client's), for each TCP flow over IPv6 (``resp_h`` holds a colon) in Zeek's ``REJ``
    state judged ``blocked``/``rejected`` for a reset from no device nearer than the server
    (:func:`_fallback_candidate`) with a server name (:func:`fallback_name`): the first TCP flow
    over IPv4 to the same server name and port (``resp_p``; and the VLAN stack, ``capture`` when
    the table has them) that began after it and at most :data:`FALLBACK_S` after it ended
    (``ts_ns`` + ``duration`` s) and connected (:func:`retry_connected`; ``syn_answer`` read
    where the table has it, and no :data:`STALE_ANSWER` in its ``res`` detail). The client is
    not compared (its IPv4 and IPv6 addresses share nothing a flow table keeps): the time and the
    name pair them, so on a capture of many clients another client's IPv4 connection in that
    window counts too. A non-empty :data:`FALLBACK` column counts as found (the connection left
    with another batch of a chunked reading). ``res``: rows ``(purpose, verdict, reason,
    detail)`` as :func:`classify` fills them.

    An attempt whose reset nothing of its sender's was compared with (no
    :data:`~kscc_traffic.inspect.REFUSED_OWN` hint in its detail) and came from
    :data:`FALLBACK_NEARER_HOPS` or more nearer than the server's answer on the connection so
    found (the internal ``resp_ttl`` of both: the reset's hop limit, the SYN-ACK's TTL) was
    refused by a device nearer than the server (a site firewall that resets IPv6: its clients'
    IPv4 connections pass it): None, and where ``nearer`` (a list of ``len(flows)``) is given,
    its :func:`fallback_nearer_hint` there. The two are compared as captured the same way: where
    both were captured leaving the capturing host (the internal
    :data:`~kscc_traffic.flows.RESP_TTL_OUT` of both, ``l2_out``: a router's ``tcpdump -i any``
    keeps each forwarded packet's copy that came in, one hop higher than the one that left, while
    its own reset only leaves), their copies that left; else ``resp_ttl``, as first captured (real
    s59 #1: the router's own IPv6 reset, 64 as it left, beside the IPv4 SYN-ACK as it came in, 64,
    was taken for the server's)."""
    n = len(flows)
    out: list = [None] * n
    need = ("proto", "uid", "ts_ns", "duration", "resp_h", "resp_p", "conn_state", "history", "server_name")
    if not n or any(c not in flows.columns for c in need):
        return out
    got = _columns(flows, (*need, FALLBACK, "capture", "syn_answer", RESP_TTL, RESP_TTL_OUT, "orig_h", "orig_p"))
    state = np.asarray(got["conn_state"], dtype=object)
    tcp = np.asarray(got["proto"], dtype=object) == "tcp"
    rh = np.asarray(got["resp_h"], dtype=object)
    # (the few REJ rows judged blocked looked at one by one)
    refused = [i for i in np.flatnonzero(tcp & ((state == "REJ") | (state == "S0")) & (res[:, 1] == "blocked")).tolist()
               if ":" in str(rh[i]) and (_fallback_candidate(res[i]) if state[i] == "REJ" else _dropped_candidate(res[i]))]
    names = np.asarray(got["server_name"], dtype=object)
    refused = [i for i in refused if fallback_name(names[i])]
    if not refused:
        return out
    given = np.asarray(got[FALLBACK], dtype=object) if FALLBACK in got else None
    rp = got["resp_p"]
    history, uid, ts, dur, extra, answer = _attempt_columns(flows, got)
    ttl = np.asarray(got[RESP_TTL]) if RESP_TTL in got else None
    out_ttl = np.asarray(got[RESP_TTL_OUT]) if RESP_TTL_OUT in got else None

    def key(i: int) -> tuple:
        return (fallback_name(names[i]), int(rp[i]), *(str(e[i]) for e in extra))
    wanted = {key(i) for i in refused}
    cand = np.flatnonzero(tcp & np.isin(rp, np.fromiter({int(rp[i]) for i in refused}, np.int64)))
    if len(cand):
        cand = cand[np.fromiter(map(_CONNECTED_STATES.__contains__, state[cand].tolist()), bool, len(cand))]
    found: dict[tuple, list[int]] = {}
    for j in cand.tolist():
        if ":" not in str(rh[j]) and key(j) in wanted and STALE_ANSWER not in str(res[j, 3]) and retry_connected(
                state[j], history[j], answer[j] if answer is not None else ""):
            found.setdefault(key(j), []).append(j)
    # (each key's connections in order of (ts_ns, uid), their starts apart: the first one after a
    # refused attempt found by bisection; a key is a server name, not a client's, so on a capture
    # of many clients it may hold most of the table's connections: no scan of them per attempt)
    starts: dict[tuple, list[int]] = {}
    oh = np.asarray(got["orig_h"], dtype=object) if "orig_h" in got else None
    op = got["orig_p"] if "orig_p" in got else None
    other: dict[tuple, list[int]] = {}
    for k, js in found.items():
        js.sort(key=lambda j: (int(ts[j]), str(uid[j])))
        starts[k] = [int(ts[j]) for j in js]
        # (per connection, the next one of another client: several clients connecting to the name
        # in an attempt's window make its pairing no fact, said so)
        other[k] = other_client_after([str(oh[j]) for j in js]) if oh is not None else [-1] * len(js)
    for i in refused:
        d = float(dur[i])
        end = int(ts[i]) + int((d if d > 0 else 0.0) * 1e9) + int(FALLBACK_S * 1e9)
        k = key(i)
        at = bisect.bisect_right(starts[k], int(ts[i])) if k in starts else 0
        if k in starts and at < len(starts[k]) and starts[k][at] <= end:
            j = found[k][at]
            nxt = other[k][at]
            fb = (int(ts[j]), str(uid[j]), int(ttl[j]) if ttl is not None else -1,
                  int(out_ttl[j]) if out_ttl is not None else -1,
                  endpoints_text(oh[j], op[j], rh[j], rp[j]) if oh is not None and op is not None else "",
                  nxt >= 0 and starts[k][nxt] <= end)
        elif given is not None and isinstance(given[i], tuple):
            fb = given[i]
        else:
            continue
        if state[i] == "S0" and len(fb) > 5 and fb[5]:
            continue    # (a silent attempt beside several clients' IPv4 connections: nothing told)
        if state[i] == "REJ" and ttl is not None and len(fb) > 2 and REFUSED_OWN not in str(res[i, 3]):
            # (like for like: both copies that left the capturing host where both did, else both
            # as first captured)
            mine, ref = _ttl_value(ttl[i]), _ttl_value(fb[2])
            if out_ttl is not None and len(fb) > 3 and _ttl_value(out_ttl[i]) >= 0 and _ttl_value(fb[3]) >= 0:
                mine, ref = _ttl_value(out_ttl[i]), _ttl_value(fb[3])
            if _nearer_than_fallback(mine, ref):
                if nearer is not None:
                    nearer[i] = fallback_nearer_hint(mine, ref, str(fb[1]))
                continue
        out[i] = (int(fb[0]), str(fb[1]), str(fb[4]) if len(fb) > 4 else "", bool(fb[5]) if len(fb) > 5 else False)
    return out


def fallback_detail(ts_ns: int, fallback: tuple, detail: str = "") -> str:
    """The detail of a refused IPv6 attempt its client followed over IPv4
    (:func:`family_fallbacks`): ``refused over IPv6 at 08:22:14.241 UTC, the client fell back to
    IPv4 0.002 s later (192.0.2.10:43112 -> 198.51.100.10:23101, uid C…): the SYN was answered by
    a TCP reset, and a connection to the same server name and port over IPv4 followed and
    connected (a dual-stack client's fallback, happy eyeballs): most likely …``
    (:data:`FALLBACK_MEANS`), then the hints of the attempt's own ``detail`` (which device sent
    the reset: :func:`.inspect.refused_hint`; "nothing listens on this port", said otherwise
    here, left out). Where other clients connected to that name and port over IPv4 in the
    window too (a capture of several clients: :data:`FALLBACK_SHARED`), the fallback is not said
    as a fact: ``…, a connection over IPv4 to the same server name and port followed 0.002 s
    later (…), most likely this client's fallback (happy eyeballs), but other clients connected
    to that name and port over IPv4 then too: …``. ``ts_ns``: the attempt's start (its SYN);
    ``fallback``: ``(ts_ns, uid)`` of the IPv4 connection, then its endpoints as the table shows
    them (:func:`endpoints_text`; '' not known: the uid alone) and whether other clients'
    connections shared the window."""
    which = _fallback_which(fallback)
    later = _seconds_text(max(int(fallback[0]) - int(ts_ns), 0) / 1e9)
    if len(fallback) > 3 and fallback[3]:
        said = (f"{FALLBACK_CLEARED}{_clock_text(int(ts_ns))} UTC, a connection over IPv4 to the same server name "
                f"and port followed {later} s later and connected ({which}), most likely this client's fallback "
                f"(happy eyeballs), but {FALLBACK_SHARED}: {REJ_DETAIL}: {FALLBACK_MEANS}")
    else:
        said = (f"{FALLBACK_CLEARED}{_clock_text(int(ts_ns))} UTC, the client fell back to IPv4 "
                f"{later} s later ({which}): {REJ_DETAIL}, and a "
                "connection to the same server name and port over IPv4 followed and connected (a dual-stack client's "
                f"fallback, happy eyeballs): {FALLBACK_MEANS}")
    hints = []
    for h in str(detail).split("; ")[1:]:
        for means in (REFUSED_OWN_MEANS, REFUSED_OWN_MEANS_V6):
            if h.startswith(REFUSED_OWN) and f"): {means}" in h:
                h = h.split(f"): {means}", 1)[0] + ")"
        if h:
            hints.append(h)
    return "; ".join([said, *hints])


def _note_family_fallbacks(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Judge again (``res`` rows, in place) each IPv6 connection attempt refused by a reset from
    no device nearer than the server that its client followed over IPv4 to the same server name
    and port (:func:`family_fallbacks`): ``blocked``/``rejected`` becomes ``ok``, reason '', the
    detail :func:`fallback_detail` (``conn_state`` and ``history`` stay ``REJ``, ``Sr``: what
    Zeek logs). A reset from a nearer device, another stack's, an ICMPv6 error or silence keeps
    its verdict (a firewall of the site's own may refuse IPv6 there); so does a reset from
    :data:`FALLBACK_NEARER_HOPS` nearer than the server's answer on that IPv4 connection, which
    tells a nearer device where nothing else of the reset's sender did: its detail gets
    :func:`fallback_nearer_hint`."""
    nearer: list = [None] * len(flows)
    found = family_fallbacks(flows, res, nearer)
    if found.count(None) == len(found) and nearer.count(None) == len(nearer):
        return      # (none found: counted in C, not a generator per row)
    ts = flows["ts_ns"].to_numpy(np.int64)
    for i, fb in enumerate(found):
        if fb is not None and str(res[i, 2]).split(",")[0] == "no_answer":
            res[i, 3] = dropped_fallback_detail(int(ts[i]), fb, str(res[i, 3]))
        elif fb is not None:
            res[i, 1], res[i, 2], res[i, 3] = "ok", "", fallback_detail(int(ts[i]), fb, str(res[i, 3]))
        elif nearer[i]:
            res[i, 3] = f"{res[i, 3]}; {nearer[i]}"


def note_auth_rounds(flows: pd.DataFrame) -> pd.DataFrame:
    """A classified flow table (:data:`CLASS_COLUMNS` filled in) with each proxy's 407 that an
    accepted retry on another connection answered judged again as :func:`classify` judges it
    (:func:`_note_auth_rounds`), and each DNS flow with no address for a name another lookup
    got one for (:func:`_note_resolved`), and each failed lookup a lookup of its client made good
    (:func:`_note_dns_retries`), and the probes of a port or address scan (:func:`_note_scans`):
    for a table whose rows were classified apart (the live session's flows, each classified when it
    changed). A copy when a row changed, else
    ``flows`` itself."""
    if not len(flows) or any(c not in flows.columns for c in CLASS_COLUMNS):
        return flows
    res = np.column_stack([flows[k].to_numpy(dtype=object) for k in CLASS_COLUMNS])
    before = res.copy()
    _note_auth_rounds(flows, res)
    _note_stale_retries(flows, res)     # (a stale connection's reset attempt, its retry connected)
    _note_refused_retries(flows, res)   # (a refused attempt, a later connection worked)
    _note_family_fallbacks(flows, res)  # (a refused IPv6 attempt, the client fell back to IPv4)
    _note_resolved(flows, res)      # (a DNS flow with no address, its name resolved by another)
    _note_truncated_partial(flows, res)
    _note_dns_retries(flows, res)   # (a failed lookup, a later one of its client got an address)
    _note_scans(flows, res)         # (the probes of a port or address scan)
    if (res == before).all():
        return flows
    out = flows.copy()
    for j, k in enumerate(CLASS_COLUMNS):
        out[k] = pd.Series(res[:, j], dtype=object, index=out.index)
    return out


#: (marker, product): a certificate whose issuer's CN, O or OU holds the marker as whole words
#: (lower case) was made by a TLS-inspecting firewall or proxy, which re-signs each server's
#: certificate with its own CA, keeping the names (the markers are in those products' default CA
#: names and organisations; none is in a public CA's): :func:`inspection_product`
INSPECTION_CAS: tuple[tuple[str, str], ...] = (
    ("fortinet", "a Fortinet FortiGate"), ("fortigate", "a Fortinet FortiGate"),
    ("palo alto networks", "a Palo Alto Networks firewall"), ("zscaler", "Zscaler"),
    ("netskope", "Netskope"), ("sophos", "a Sophos firewall"), ("cisco umbrella", "Cisco Umbrella"),
    ("check point", "a Check Point gateway"),
    ("forcepoint", "Forcepoint"), ("websense", "Forcepoint (Websense)"), ("barracuda", "a Barracuda firewall"),
    ("watchguard", "a WatchGuard firewall"), ("sonicwall", "a SonicWall firewall"),
    ("mcafee web gateway", "McAfee Web Gateway"), ("skyhigh", "Skyhigh Secure Web Gateway"),
    ("blue coat", "a Blue Coat ProxySG"), ("bluecoat", "a Blue Coat ProxySG"), ("menlo security", "Menlo Security"),
    ("iboss", "iboss"), ("cloudflare managed", "Cloudflare Gateway"), ("untangle", "Untangle"),
    ("kerio", "Kerio Control"), ("mitmproxy", "mitmproxy"), ("squid", "a Squid proxy's SSL bump"), ("portswigger", "Burp Suite"),
    ("do_not_trust_fiddlerroot", "Fiddler"), ("charles proxy", "Charles Proxy"),
    # (endpoint security products that filter TLS on the device itself)
    ("eset ssl filter", "ESET's SSL/TLS filtering on the device"),
    ("avast web/mail shield", "Avast's Web Shield on the device"),
    ("avg web/mail shield", "AVG's Web Shield on the device"),
    ("bitdefender personal ca", "Bitdefender's encrypted web scan on the device"),
    ("kaspersky anti-virus personal root", "a Kaspersky endpoint product's encrypted connections scan on "
                                           "the device"),
    ("kaspersky web anti-virus personal root", "a Kaspersky endpoint product's encrypted connections scan on "
                                               "the device"),
    # (product names only, no vendor that is also a public CA's: not "Symantec"; newcomer 33 F7)
    ("kaspersky web traffic security", "Kaspersky Web Traffic Security"), ("firepower", "a Cisco Firepower device"),
)


#: words a CA's own name uses for what it is for, whatever product runs it (an organisation's
#: "Muster AG SSL Inspection Root", Palo Alto's "Forward-Trust" CA an admin names after the
#: company, "Corp Inspection CA"): markers as :data:`INSPECTION_CAS`' are, hyphens and underscores
#: read as spaces ("SSL-Inspection"); none is in a public CA's name. (A CA so named marks a
#: certificate for another name as an inspecting device's own, not another server's: break-it
#: real s57 #4, :func:`other_server_text`.)
INSPECTION_WORDS: tuple[str, ...] = (
    "ssl inspection", "tls inspection", "https inspection", "deep inspection", "ssl decryption",
    "tls decryption", "https decryption", "ssl decrypt", "tls decrypt", "ssl interception",
    "tls interception", "https interception", "ssl intercept", "tls intercept", "forward trust",
    "inspection ca", "inspection root", "inspection intermediate", "inspection issuing", "inspection subca",
    "inspection sub ca",
)
_INSPECTION_WORDS_RE = re.compile(r"(?<![a-z0-9])(?:" + "|".join(map(re.escape, INSPECTION_WORDS)) + r")(?![a-z0-9])")
#: the product an :data:`INSPECTION_WORDS` CA is named as (after "issued by …:", "from …")
INSPECTING_DEVICE = "a TLS-inspecting proxy or firewall (as its CA's name says)"

#: the issuer attributes that name a CA's maker: common name, organisation, organisational unit
_ISSUER_NAMES = re.compile(r"(?:^|,)(?:CN|O|OU)=((?:\\.|[^,\\])*)")


def inspection_product(issuer: str) -> str:
    """The TLS-inspection product whose CA issued a certificate (:data:`INSPECTION_CAS`), from its
    issuer text (``cert_issuer``, RFC 4514): a marker found as whole words in its CN, O or OU
    (not inside a word, "Philosophos", nor in a DC or locality); else :data:`INSPECTING_DEVICE`
    when those name the CA for inspection (:data:`INSPECTION_WORDS`: "SSL Inspection Root");
    '' when none is known."""
    if not issuer:
        return ""
    text = " | ".join(v.lower() for v in _ISSUER_NAMES.findall(issuer))
    product = next((product for marker, product in INSPECTION_CAS
                    if re.search(r"(?<![a-z0-9])" + re.escape(marker) + r"(?![a-z0-9])", text)), "")
    if product:
        return product
    return INSPECTING_DEVICE if _INSPECTION_WORDS_RE.search(re.sub(r"[-_\s]+", " ", text)) else ""


#: the flow columns _judge reads
_JUDGE_COLUMNS = ("proto", "resp_p", "orig_p", "resp_h", "orig_h", "server_name", "dns_name", "partial", "conn_state",
                  "resp_bytes", "duration",
                  "resp_pkts", "orig_pkts", "icmp_unreachable", "service", "cast", "history", "client_proto",
                  "server_proto", "cert_names", "sni", "tls_established", "tls_alert", "query", "dns_rcode",
                  "payload_cut", "proxy_target", "http_status", "dns_answers", "orig_resent", "quiet_s",
                  "tunnel_resp_bytes", "http_host", "tls_wait_from_s", "tls_wait_after", "went_on", "tcp_hdr_cut",
                  "blind_client_next", "blind_closer", "blind_wait_s", "blind_server_next",
                  "blind_client_alert", "blind_unacked", "blind_window", "tunnel_http_status", "tunnel_close_s", "stall_from_s",
                  "resp_stall_from_s", "mtu_hint", "reset_hint", "cert_issuer", "server_head", "server_binary", "syn_answer",
                  "tls13_refused", "tls_client_quit", "refused_after_request", "hello_wait_s", "window_held_s", "dns_error_aaaa_only", "dns_asked", "hello_split", "hello_copies", "unreassembled", "first_bytes_cut",
                  "tls_close", "tls_close_wait_s", "dns_mismatch", "acked_unseen",
                  "client_head", "client_binary", "orig_bytes", "tls_close_served", "http_location", "http_reason", "http_page", "flight_cut", "http_later", "mcast_groups",
                  "tls_ech", "window_closed", "synack_not_taken", "start_lost", "tls_hrr", "tls_version", "tls_client_cert", "tls_offer", "cert_dated", "opened_cloud", "orig_cloud_name", "cut_why", "cut_why_resp", "proxy_auth", "answered_from")
#: columns of _JUDGE_COLUMNS a table may lack and still be grouped: read as '' (as _judge's
#: ``row.get`` does; tables built before they existed)
_OPTIONAL_COLUMNS = ("orig_h", "query", "dns_rcode", "payload_cut", "proxy_target", "http_status", "dns_answers",
                     "orig_resent", "quiet_s", "tunnel_resp_bytes", "http_host", "tls_wait_from_s",
                     "tls_wait_after", "went_on", "tcp_hdr_cut", "blind_client_next", "blind_closer",
                     "blind_wait_s", "blind_server_next", "blind_client_alert", "blind_unacked", "blind_window",
                     "tunnel_http_status", "tunnel_close_s", "stall_from_s", "resp_stall_from_s", "mtu_hint", "reset_hint", "cert_issuer", "server_head", "server_binary",
                     "syn_answer", "tls13_refused", "tls_client_quit", "refused_after_request", "hello_wait_s", "window_held_s", "dns_error_aaaa_only", "dns_asked", "hello_split", "hello_copies", "unreassembled",
                     "first_bytes_cut", "tls_close", "tls_close_wait_s", "dns_mismatch", "acked_unseen",
                     "client_head", "client_binary", "orig_bytes", "tls_close_served", "http_location", "http_reason", "http_page", "flight_cut", "http_later", "mcast_groups",
                     "tls_ech", "window_closed", "synack_not_taken", "start_lost", "tls_hrr", "tls_version", "tls_client_cert", "tls_offer", "cert_dated", "opened_cloud", "orig_cloud_name", "cut_why", "cut_why_resp", "proxy_auth", "answered_from")
#: the columns of :data:`_JUDGE_COLUMNS` without which the grouping is not made (row by row then)
_REQUIRED_COLUMNS = tuple(c for c in _JUDGE_COLUMNS if c not in _OPTIONAL_COLUMNS)


#: flow columns whose exact value may change the verdict (compared as they are)
_EXACT_COLUMNS = ("proto", "resp_p", "server_name", "dns_name", "partial", "conn_state", "icmp_unreachable",
                  "service", "cast", "client_proto", "server_proto", "cert_names", "sni",
                  "tls_established", "tls_alert", "dns_rcode", "payload_cut", "proxy_target", "orig_resent",
                  "tls_wait_after", "went_on", "tcp_hdr_cut", "blind_client_next", "blind_closer",
                  "blind_client_alert", "blind_unacked", "blind_window", "mtu_hint", "reset_hint", "cert_issuer", "server_head", "server_binary",
                  "syn_answer", "tls13_refused", "tls_client_quit", "refused_after_request", "dns_error_aaaa_only", "dns_asked", "hello_split", "hello_copies", "unreassembled",
                  "first_bytes_cut", "tls_close", "dns_mismatch", "acked_unseen", "client_head", "client_binary", "http_location", "http_reason", "http_page", "flight_cut", "http_later",
                  "tls_ech", "window_closed", "synack_not_taken", "start_lost", "tls_hrr", "tls_version", "tls_client_cert", "tls_offer", "cert_dated", "opened_cloud", "orig_cloud_name", "cut_why", "cut_why_resp", "proxy_auth", "answered_from")
#: exact columns read only on a TLS purpose (:func:`_client_cleartext` quotes them): keyed '' for
#: a flow to a port no TLS rule documents, not through a proxy (:func:`_verdict_keys`)
_QUOTED_COLUMNS = ("client_head", "client_binary")
#: flow columns that _judge turns into an integer with int(): they must be integers for the fast path
_INT_COLUMNS = ("resp_p", "orig_p", "resp_pkts", "orig_pkts", "resp_bytes")
#: flow columns _judge uses as text: they must hold only ``str`` for the fast path
_TEXT_COLUMNS = ("proto", "resp_h", "orig_h", "server_name", "dns_name", "conn_state", "icmp_unreachable", "service",
                 "cast", "history", "client_proto", "server_proto", "cert_names", "sni", "tls_alert", "query",
                 "dns_rcode", "proxy_target", "http_status", "dns_answers", "http_host", "tls_wait_after",
                 "blind_closer", "tunnel_http_status", "mtu_hint", "reset_hint", "cert_issuer", "server_head", "server_binary",
                 "syn_answer", "hello_split", "hello_copies", "unreassembled", "tls_close", "dns_mismatch", "acked_unseen",
                 "client_head", "client_binary", "http_location", "http_reason", "http_page", "flight_cut", "http_later", "mcast_groups", "window_closed", "synack_not_taken", "start_lost",
                 "tls_version", "tls_client_cert", "tls_offer", "cert_dated", "opened_cloud", "orig_cloud_name", "cut_why", "cut_why_resp", "proxy_auth", "answered_from")
#: flow columns whose codes the grouping key uses (the others are reduced first, then coded)
_CODED_COLUMNS = frozenset(_EXACT_COLUMNS) | {"history"}
#: compare the combined key when the product of the column cardinalities stays below this
_KEY_LIMIT = 1 << 62


class _Coded(NamedTuple):
    """A key part or column as codes: equal values have equal ``codes`` (int64, one per flow) in
    ``range(count)``, and ``distinct[codes]`` (object array) are the values."""

    codes: np.ndarray
    count: int
    distinct: np.ndarray

    @property
    def values(self) -> np.ndarray:
        """The values, one per flow (``distinct[codes]``)."""
        return self.distinct[self.codes]

    def at(self, rows: np.ndarray) -> list:
        """The values at positions ``rows`` (a list of Python objects)."""
        return self.distinct[self.codes[rows]].tolist()

    def where(self, mask: np.ndarray, other) -> "_Coded":
        """As ``np.where(mask, values, other)``, coded (``other`` a distinct value of its own
        unless one of the values equals it: the same grouping as the values)."""
        same = np.flatnonzero(self.distinct == other)
        if len(same):
            return _Coded(np.where(mask, self.codes, same[0]), self.count, self.distinct)
        distinct = np.empty(self.count + 1, dtype=object)
        distinct[:self.count] = self.distinct
        distinct[self.count] = other
        return _Coded(np.where(mask, self.codes, self.count), self.count + 1, distinct)


def _recode(codes: np.ndarray, values: np.ndarray) -> _Coded:
    """``values[codes]`` coded (``values``: one per code of a coded column; equal ones merged)."""
    c, u = pd.factorize(values, use_na_sentinel=False)
    return _Coded(c[codes], max(len(u), 1), np.asarray(u, dtype=object))


def _key_values(s: pd.Series | np.ndarray, rows: np.ndarray | None, text: bool, coded: bool = True):
    """A column (a Series, or the numpy array of one: :func:`_judge_columns`) at ``rows`` (None: all its rows) for the grouping key: ``(values, coded)``:
    ``coded`` a :class:`_Coded` of the values (None for a number column, whose values are
    used as they are, and for an object column when not ``coded``: one the key holds only
    reduced, coded then), ``values`` the values (None when ``coded``: ``coded.values`` has
    them). None when the column holds something else than numbers, ``str`` only or (when not
    ``text``) ``bool`` only: a duplicated name, missing values, mixed objects, other dtypes; the
    caller then falls back to the per-row :func:`_judge`.

    A text column is hashed once (pandas' text dtype without making Python strings), and only
    its values that differ from its first one: no string is built per row."""
    if isinstance(s, pd.DataFrame):
        return None
    if isinstance(s.dtype, np.dtype) and s.dtype.kind in "biuf":
        if text:
            return None
        a = s if isinstance(s, np.ndarray) else s.to_numpy()
        return (a if rows is None else a[rows]), None
    if s.dtype == object:
        a = s if isinstance(s, np.ndarray) else s.to_numpy()
        values = a if rows is None else a[rows]
        if not coded:
            # only the kind of its values is checked (one pass, no hashing)
            kind = pd.api.types.infer_dtype(values, skipna=False)
            if not (kind in ("string", "empty") or (kind == "boolean" and not text)):
                return None
            return values, None
        found = _str_codes(values) if len(values) else None
        if found is not None:   # (all str: every distinct value is used, the kind is known)
            codes, uniques = found
            return None, _Coded(codes, max(len(uniques), 1), uniques)
        found = _factorize(values)
        if found is None:
            return None     # (a missing value: not str nor bool)
        codes, uniques = found
    else:
        codes, uniques = pd.factorize(s, use_na_sentinel=False)
        if rows is not None:
            codes = codes[rows]
        uniques = np.asarray(uniques, dtype=object)
    # a str never equals another type, so these hold only str when the distinct values do; a
    # bool column may have merged True with 1 (or False with 0): the same truth value for _judge
    kind = pd.api.types.infer_dtype(uniques[np.bincount(codes, minlength=len(uniques)) > 0], skipna=False)
    if not (kind in ("string", "empty") or (kind == "boolean" and not text)):
        return None
    return None, _Coded(codes, max(len(uniques), 1), uniques)


def _str_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``pd.factorize(values)`` of an object array whose cells are all ``str`` (exactly: no
    subclass): ``(codes, distinct)``, int64 codes numbering the distinct texts in order of first
    appearance, the texts an object array; None when a cell is anything else (the caller's own
    way then). Compiled (:mod:`._textcodes`: one pass, no hashing of a cell that is the object
    of the cell before it) when built, else :func:`_str_codes_py` (the same codes and texts:
    tests/test_textcodes.py)."""
    if _textcodes is None:
        return _str_codes_py(values)
    codes = np.empty(len(values), np.int64)
    distinct = _textcodes.codes(values.tolist(), codes)
    if distinct is None:
        return None
    out = np.empty(len(distinct), dtype=object)
    out[:] = distinct
    return codes, out


def _str_codes_py(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_str_codes` in numpy and pandas (the fallback of :mod:`._textcodes`)."""
    if not all(type(v) is str for v in values.tolist()):
        return None
    codes, distinct = pd.factorize(values)
    out = np.empty(len(distinct), dtype=object)
    out[:] = list(distinct)
    return codes.astype(np.int64, copy=False), out


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``pd.factorize`` of an object array (:func:`_str_codes` when all its cells are ``str``,
    else hashing only the values that differ from the first one: most columns are mostly one
    value); None when a value is missing (None, NaN, NA, NaT: such a column is not one of
    ``str`` or ``bool``)."""
    if len(values) == 0:
        return np.zeros(0, np.int64), values
    found = _str_codes(values)
    if found is not None:
        return found
    codes = np.zeros(len(values), np.int64)
    # (compared as a Python object: numpy would make a str ``values[0]`` a numpy string, which
    # drops trailing NULs, so that "a\x00" and "a" compare equal)
    probe = np.empty((), dtype=object)
    probe[()] = values[0]
    other = np.asarray(values != probe, dtype=bool)
    if not other.any():
        return codes, values[:1].copy()
    c, u = pd.factorize(values[other])     # (a missing value: code -1, no NA pass over the array)
    if len(c) and c.min() < 0:
        return None
    codes[other] = c + 1
    uniques = np.empty(len(u) + 1, dtype=object)
    uniques[0] = values[0]
    uniques[1:] = np.asarray(u, dtype=object)
    return codes, uniques


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Equal values -> equal integer codes in ``range(count)``: ``(codes, count)``. The first
    value's rows get 0 and only the others are hashed (most columns are mostly one value). A
    bool array is its own code (False 0, True 1; count 2, or 1 when all False): nothing to hash
    nor convert."""
    if values.dtype == bool:
        return values, 2 if values.any() else 1
    codes = np.zeros(len(values), np.int64)
    other = values != values[0]
    if not other.any():
        return codes, 1
    c, u = pd.factorize(values[other], use_na_sentinel=False)
    codes[other] = c + 1
    return codes, len(u) + 1


def _verdict_groups(flows: pd.DataFrame, rules: RuleSet, series: dict | None = None) -> np.ndarray | None:
    """For each flow, the number of its group (see :func:`_verdict_keys`); None when the table is
    not of the usual column types (the caller then judges row by row)."""
    found = _verdict_keys(flows, rules, series)
    return None if found is None else found[0]


def _verdict_keys(flows: pd.DataFrame, rules: RuleSet, series: dict | None = None) -> tuple | None:
    """``(groups, rows, keys)``: for each flow, the number of its group of flows that
    :func:`_judge` cannot tell apart (the same result for all), groups numbered in order of first
    appearance; None when the table is not of the usual column types (the caller then judges
    row by row).

    Flows of another protocol than TCP/UDP form one group. For the others the key holds every
    column :func:`_judge` reads, each reduced to what the judgement uses: a
    client port only when a rule documents it (or it is 53; else whether it is unknown, -1), the responder address only then
    (for the wrong_direction detail) or for a request to a proxy or plain HTTP to a documented
    HTTP port (its Host, answer, history and duration as the detail prints it, to 0.1 s, and
    whether it reached :data:`TLS_SILENCE_S`), the responder's packet and byte
    counts as "any?", the originator's packet count only for an unanswered no-answer state or a
    partial TCP flow with nothing back (with "sent data?" (:func:`_orig_sent_data`, also keyed
    for a ClientHello the snaplen cut, a partial flow answered by resets, a flow seen one way)
    and "quiet for TLS_SILENCE_S?" then),
    the duration (so printed) only for a ClientHello without handshake nor answer byte lasting at
    least :data:`TLS_SILENCE_S` (and the wait after the client's next flight, ``duration`` less
    ``tls_wait_from_s``, likewise), the history as
    "starts with S" / "is S", the DNS query name only where ``dns_rcode`` is an error (the
    ``detail`` quotes it then), ``http_status`` only through a proxy or for a ClientHello
    answered in HTTP. A column of :data:`_OPTIONAL_COLUMNS` the table lacks counts as
    '' everywhere. ``series``: the table's columns already read (:func:`_judge_columns`), if
    the caller has them.

    ``rows``: the positions of the TCP/UDP flows; ``keys``: the key's parts, each an array of one
    value per flow of ``rows`` or a :class:`_Coded` of them (:func:`_part_values` reads either):
    two TCP/UDP flows, of this table or another with the same columns and dtypes, whose parts
    are all equal are judged alike (:class:`JudgementCache` relies on it)."""
    if series is None:
        series = _judge_columns(flows)
    # (the columns the table has are those of ``series``: no label looked up in the table's)
    if any(c not in series for c in _REQUIRED_COLUMNS):
        return None
    proto = series["proto"]
    if isinstance(proto, pd.DataFrame):
        return None
    # any other protocol is unclassified at once, whatever its other columns hold (ICMP flows
    # added after the application columns have NaN there): group 0, the rest keyed
    proto = np.asarray(proto, dtype=object) if isinstance(proto, np.ndarray) else proto.to_numpy(dtype=object)
    tu = (proto == "tcp") | (proto == "udp")
    rows = np.flatnonzero(tu)
    n = len(rows)
    # (a column of _OPTIONAL_COLUMNS the table lacks: '' everywhere; made only then)
    blank = pd.Series(repeated("", len(flows)), index=flows.index) if len(series) < len(_JUDGE_COLUMNS) else None
    # (every flow TCP/UDP, the usual case: the columns as they are, not taken at rows)
    at_rows = None if n == len(flows) else rows
    cols = {c: _key_values(series.get(c, blank), at_rows, c in _TEXT_COLUMNS,
                           c in _CODED_COLUMNS)
            for c in _JUDGE_COLUMNS}
    if any(x is None for x in cols.values()):
        return None
    # the coded columns (their values made only where needed: v[c]), the others' values
    K = {c: x[1] for c, x in cols.items() if x[1] is not None}
    v = _Values({c: x[0] for c, x in cols.items() if x[1] is None}, K)
    if any(v[c].dtype.kind not in "iu" for c in _INT_COLUMNS) or v["duration"].dtype.kind not in "iuf":
        return None
    for c in ("orig_bytes", "tls_close_served"):
        if c in flows.columns and v[c].dtype.kind not in "iu":
            return None     # (int() of another type in _orig_sent_data, _served_before_close: row by row)
    if n == 0:
        return np.zeros(len(flows), np.int64), rows, []

    def eq(c: str, value) -> np.ndarray:
        """``v[c] == value``, compared once per distinct value of a coded column."""
        k = K.get(c)
        return v[c] == value if k is None else (k.distinct == value)[k.codes]

    def isin(c: str, values) -> np.ndarray:
        """``np.isin(v[c], values)``, once per distinct value of a coded column."""
        k = K.get(c)
        return np.isin(v[c], list(values)) if k is None else np.isin(k.distinct, list(values))[k.codes]

    def masked(mask: np.ndarray, c: str):
        """``np.where(mask, v[c], "")`` as a key part (a text column: coded, only its values at
        ``mask`` hashed)."""
        return _masked(mask, v[c], "") if c not in K else K[c].where(mask, "")

    # (each protocol a rule names, compared once)
    on = {t: eq("proto", t) for t in {"tcp", "udp"} | {r.transport for r in rules.rules}}
    tcp = on["tcp"]
    orig_p, resp_p = v["orig_p"], v["resp_p"]
    partial = v["partial"].astype(bool)
    documented = np.zeros(n, bool)
    for r in rules.rules:
        documented |= on[r.transport] & (orig_p >= r.port_lo) & (orig_p <= r.port_hi)
    answered = v["resp_pkts"] > 0
    # a request through a proxy (TCP; a CONNECT or one in absolute-form): judged on its answer,
    # its history and duration too, and its detail names the proxy (rare: such flows are keyed on
    # all of those)
    no_proxy = eq("proxy_target", "")
    connect = ~no_proxy & tcp
    # plain HTTP sent straight to a port a rule documents for HTTP: judged on its answer as a
    # request to a proxy is (_proxy_answer), its detail naming the server and the Host
    http_port = np.zeros(n, bool)
    for r in rules.rules:
        if r.app_protocol == "http":
            http_port |= on[r.transport] & (resp_p >= r.port_lo) & (resp_p <= r.port_hi)
    direct = http_port & tcp & no_proxy & ~partial & eq("client_proto", "http")
    asks = connect | direct
    # (a direct request answered 2xx or 3xx is the server reached: _proxy_answer returns before
    # reading its history, duration, Host or responder; only the others are keyed on them, so
    # such requests, each with its own duration and history, are judged once)
    direct_read = direct.copy()
    at = np.flatnonzero(direct)
    if len(at):
        direct_read[at] = [s[:1] not in ("2", "3") for s in v["http_status"][at].tolist()]
    asks_read = connect | direct_read
    # (the client's first bytes are quoted only on a TLS purpose, _client_cleartext: a flow to a
    # port no TLS rule documents, not through a proxy, is keyed '' there)
    tls_port = np.zeros(n, bool)
    for r in rules.rules:
        if r.app_protocol in ("tls", "https"):
            tls_port |= on[r.transport] & (resp_p >= r.port_lo) & (resp_p <= r.port_hi)
    quoted = tls_port | ~no_proxy
    history = K["history"]
    hist_codes, hist_values = history.codes, history.distinct
    hist_data = np.array([isinstance(h, str) and "D" in h for h in hist_values.tolist()], bool)
    # the originator sent payload (_orig_sent_data): a D in its history, or orig_bytes above 0
    # (above 1 in a partial flow: a keep-alive's size), its payload on a SYN or FIN
    ob = v["orig_bytes"]
    least = np.where(partial, 1, 0)
    sent = hist_data[hist_codes] | ((ob > least) if ob.dtype.kind in "iu" else np.zeros(n, bool))
    # a ClientHello the snaplen cut before it could be read: judged as one that was (a superset
    # of _judge's ``unread``: keyed apart on "sent data?")
    unread = tcp & v["payload_cut"].astype(bool) & sent
    bn = v["blind_server_next"]
    blind_next = bn.astype(np.int64) if bn.dtype.kind in "iu" else np.zeros(n, np.int64)
    bw = v["blind_wait_s"]
    blind_wait = bw.astype(float) if bw.dtype.kind in "iuf" else np.full(n, -1.0)
    # the ClientHello-without-answer test reads the duration (and prints it to 0.1 s)
    hello = (isin("service", _SSL_SERVICES) | unread) & ~v["tls_established"].astype(bool)
    hello_silent = hello & (v["resp_bytes"] == 0)
    duration = v["duration"].astype(float)
    quiet = v["quiet_s"].astype(float) if v["quiet_s"].dtype.kind in "iuf" else np.zeros(n)
    tb = v["tunnel_resp_bytes"]
    tunnel_bytes = tb.astype(np.int64) if tb.dtype.kind in "iu" else np.full(n, -1, np.int64)
    # (how soon the proxy closed the tunnel after its 2xx: _empty_tunnel_closed, quoted)
    tc = v["tunnel_close_s"]
    tunnel_close = tc.astype(float) if tc.dtype.kind in "iuf" else np.full(n, -1.0)
    # a handshake the server left waiting after the client's next flight: the wait (duration less
    # tls_wait_from_s) against TLS_SILENCE_S, printed to 0.1 s
    tw = v["tls_wait_from_s"]
    waited = tw.astype(float) if tw.dtype.kind in "iuf" else np.full(n, -1.0)
    waiting = hello & (waited >= 0)
    gap = duration - waited
    cw = v["tls_close_wait_s"]
    cs = v["tls_close_served"]
    close_served = cs.astype(np.int64) if cs.dtype.kind in "iu" else np.full(n, -1, np.int64)
    close_wait = cw.astype(float) if cw.dtype.kind in "iuf" else np.full(n, -1.0)
    sf, rsf = v["stall_from_s"], v["resp_stall_from_s"]
    stall_from = sf.astype(float) if sf.dtype.kind in "iuf" else np.full(n, -1.0)
    resp_from = rsf.astype(float) if rsf.dtype.kind in "iuf" else np.full(n, -1.0)
    # (which side stalled is quoted: keyed apart)
    stall_side = np.where(stall_from >= 0, 1, np.where(resp_from >= 0, 2, 0))
    stall_from = np.where(stall_from >= 0, stall_from, resp_from)
    closed_r = np.array([_closed_by(h, True) if isinstance(h, str) else False for h in hist_values.tolist()])
    closed_o = np.array([_closed_by(h, False) if isinstance(h, str) else False for h in hist_values.tolist()])
    silent_closed = np.where(stall_side == 1, closed_r[hist_codes], closed_o[hist_codes])
    stalling = tcp & (stall_from >= 0) & ~silent_closed
    stall_gap = duration - stall_from
    # a ClientHello answered in cleartext HTTP: the detail quotes the status (not_tls)
    http_answer = eq("client_proto", "tls") & eq("server_proto", "http")
    # (per distinct history: which unusual handshake it shows, 0 none)
    unusual = [_unusual_handshake_kind(h) if isinstance(h, str) else 0 for h in hist_values.tolist()]
    hist = _recode(hist_codes, np.array(
        [int(h.lstrip("^")[:1] == "S") + 2 * (h.lstrip("^") == "S")
         + 4 * bool(_INVALID_PROBE.match(h.lstrip("^"))) * (1 + ("r" in h))
         + 16 * bool(_INVALID_XMAS.match(h.lstrip("^"))) * (1 + ("r" in h))
         + 64 * k + 256 * ("h" in history_core(h))
         if isinstance(h, str) else 0 for h, k in zip(hist_values.tolist(), unusual)], dtype=object))
    # (an attempt its originator ended with a FIN+RST, unanswered: its packet count is printed)
    syn_fin_rst = (np.array(unusual, np.int64) == 1)[hist_codes]
    # a partial TCP flow the responder sent nothing in: judged on the originator's packets, whether
    # it sent data and how long nothing came back (:func:`_partial_silence`)
    part_silent = tcp & partial & ~answered
    # a partial TCP flow whose responder sent only resets or FINs (:func:`_partial_closes`)
    closes_kind = _recode(hist_codes, np.array(
        [_responder_only_closes(h) if isinstance(h, str) else "" for h in hist_values.tolist()], dtype=object))
    part_closes = tcp & partial & ~(closes_kind.distinct == "")[closes_kind.codes]
    unasked = np.array([_unasked_synack(h) if isinstance(h, str) else False for h in hist_values.tolist()],
                       dtype=bool)[hist_codes]
    hs_end = _recode(hist_codes, np.array([_handshake_end(h) if isinstance(h, str) else ""
                                           for h in hist_values.tolist()], dtype=object))
    # (per row, as _bare_handshake_end: no such end when the originator sent payload on its SYN)
    hs_end = hs_end.where(~(np.isin(hs_end.distinct, ("reset", "closed", "aborted"))[hs_end.codes] & sent), "")
    hs_unacked = (hs_end.distinct == "unacked")[hs_end.codes]
    hs_closed = (hs_end.distinct == "closed")[hs_end.codes]
    dns_error = ~isin("dns_rcode", DNS_NO_ERROR)
    one_way = tcp & ~answered & eq("acked_unseen", "resp")
    # a SYN to a distribution point answered by a reset: the detail names it, and says whether the
    # client is on its subnet (dp_reset_detail)
    dp_port = np.zeros(n, bool)
    for r in rules.rules:
        if r.opener == "agent_to_dp":
            dp_port |= on[r.transport] & (resp_p >= r.port_lo) & (resp_p <= r.port_hi)
    dp_reset = dp_port & eq("conn_state", "REJ")
    near = np.zeros(n, bool)
    at = np.flatnonzero(dp_reset)
    if len(at):
        near[at] = [same_subnet(a, b) for a, b in zip(v["orig_h"][at].tolist(), v["resp_h"][at].tolist())]
    # (a distribution point's port: whether its responder is a local address, for a cloud name
    # there, _cloud_name; the names themselves are exact columns)
    local = np.zeros(n, bool)
    at = np.flatnonzero(dp_port)
    if len(at):
        local[at] = [local_address(str(a)) for a in v["resp_h"][at].tolist()]
    # (a cloud server's port on a local address, opened from outside: _inbound; the addresses'
    # kinds are what it reads, found once per distinct address)
    inbound = np.zeros(n, bool)
    cloud_port = np.zeros(n, bool)
    for r in rules.rules:
        if r.opener == CLOUD_OPENER and r.port_lo >= WELL_KNOWN_PORTS:
            cloud_port |= on[r.transport] & (resp_p >= r.port_lo) & (resp_p <= r.port_hi)
    at = np.flatnonzero(cloud_port & tcp & no_proxy & ~partial)
    if len(at):
        kinds: dict[str, tuple[bool, bool]] = {}

        def kind(a: str) -> tuple[bool, bool]:
            if a not in kinds:
                kinds[a] = (_is_address(a), local_address(a))
            return kinds[a]
        starts = np.array([isinstance(h, str) and h.startswith("S") for h in hist_values.tolist()], bool)[hist_codes]
        # (a local responder first, once per distinct responder: most cloud servers are not)
        r_codes, r_seen = pd.factorize(v["resp_h"][at], use_na_sentinel=False)
        at = at[starts[at] & np.array([kind(str(rh))[1] for rh in r_seen.tolist()], bool)[r_codes]]
        inbound[at] = [kind(str(oh))[0] and not kind(str(oh))[1] for oh in v["orig_h"][at].tolist()]
    # (a failed flow of a cloud server's rule to a local address: its detail quotes the address
    # when a cloud name led there, local_cloud_note; found once per distinct responder)
    local_cloud = np.zeros(n, bool)
    any_cloud = np.zeros(n, bool)
    for r in rules.rules:
        if r.opener == CLOUD_OPENER:
            any_cloud |= on[r.transport] & (resp_p >= r.port_lo) & (resp_p <= r.port_hi)
    at = np.flatnonzero(any_cloud & no_proxy)
    if len(at):
        r_codes, r_seen = pd.factorize(v["resp_h"][at], use_na_sentinel=False)
        local_cloud[at] = np.array([local_address(str(a)) for a in r_seen.tolist()] + [False], bool)[r_codes]
        at = np.flatnonzero(local_cloud)
        # (and only where a cloud name led there: the names, exact columns, looked at once each)
        named = {}
        for i, trio in zip(at.tolist(), zip(*(v[c][at].tolist() for c in ("sni", "server_name", "dns_name")))):
            if trio not in named:
                named[trio] = _cloud_name(dict(zip(("sni", "server_name", "dns_name"), trio)), rules) is not None
            local_cloud[i] = named[trio]
    # (a plain TCP purpose's request the responder reset unanswered, REQUEST_RESET: whether the
    # client closed first and how many bytes it sent, quoted)
    plain_port = np.zeros(n, bool)
    for r in rules.rules:
        if r.app_protocol == "tcp":
            plain_port |= on[r.transport] & (resp_p >= r.port_lo) & (resp_p <= r.port_hi)
    req_reset = plain_port & tcp & ~partial & no_proxy & eq("conn_state", "RSTR") & (v["resp_bytes"] == 0)
    has_synack = np.array([("h" in h) + 2 * (set(h) <= set("^h")) if isinstance(h, str) else 0
                           for h in hist_values.tolist()], np.int64)
    # (a sinkhole answer: its address and the query are in the detail; few flows have answers
    # with such an address, the others are keyed '' whatever their answers)
    codes, seen = _factorize(v["dns_answers"])     # (text: no missing value)
    hole = _recode(codes, np.array([sinkhole_address(a) for a in seen.tolist()], object))
    holed = ~(hole.distinct == "")[hole.codes]
    usable = np.array([usable_address(a) for a in seen.tolist()], bool)[codes]
    # (an error to AAAA questions only, asked over IPv6: blocked, not ok; AAAA_OVER_IPV6)
    aaaa_v6 = np.zeros(n, bool)
    at = np.flatnonzero(dns_error & eq("dns_error_aaaa_only", True))
    if len(at):
        aaaa_v6[at] = [":" in str(a) for a in v["orig_h"][at].tolist()]
    # (NOERROR with no address: the query and the family it was asked over are in the detail)
    # (only for a name the agent needs, found once per distinct name; a table without the
    # dns_answers column tells nothing of the addresses)
    nodata = eq("dns_rcode", "NOERROR") & (seen == "")[codes] if "dns_answers" in flows.columns \
        else np.zeros(n, bool)
    nodata_v6 = np.zeros(n, bool)
    at = np.flatnonzero(nodata)
    if len(at):
        q_codes, q_names = pd.factorize(v["query"][at])
        nodata[at] = np.array([_agent_name(str(q), rules) for q in q_names.tolist()] + [False], bool)[q_codes]
        at = np.flatnonzero(nodata)
        nodata_v6[at] = [":" in str(a) for a in v["orig_h"][at].tolist()]
    # (a truncated UDP answer with some address for a name the agent needs: the query is in the
    # detail, truncated_partial_detail)
    tc_partial = np.zeros(n, bool)
    at = np.flatnonzero(~dns_error & ~holed & usable & on["udp"])
    if len(at):
        da = v["dns_asked"][at]
        at = at[(da & DNS_TRUNCATED) != 0] if da.dtype.kind in "iu" else \
            at[np.array([truncated_answer(a) for a in da.tolist()], bool)]
    if len(at):
        q_codes, q_names = pd.factorize(v["query"][at])
        tc_partial[at] = np.array([_agent_name(str(q), rules) for q in q_names.tolist()] + [False], bool)[q_codes]
    # (the duration of a request to a proxy, a direct HTTP request or a ClientHello not answered
    # for TLS_SILENCE_S: the text the detail prints, and whether it is that long)
    at = np.flatnonzero(asks_read | (hello_silent & (duration >= TLS_SILENCE_S)))
    printed = _masked_at(n, at, np.array([_seconds_text(d) for d in duration[at].tolist()], dtype=object), "")
    printed_long = np.zeros(n, bool)
    printed_long[at] = duration[at] >= TLS_SILENCE_S
    unreassembled = ~eq("unreassembled", "")
    group_cast = isin("cast", _GROUP_CASTS)
    group_port = np.zeros(n, bool)
    for r in rules.rules:
        if r.cast in _GROUP_CASTS:
            group_port |= on[r.transport] & (resp_p >= r.port_lo) & (resp_p <= r.port_hi)
    # (a slow answer to the ClientHello, a window held closed: the seconds the detail prints,
    # from their thresholds on; s61 #5)
    slowness = []
    for c, least in (("hello_wait_s", SLOW_HELLO_S), ("window_held_s", WINDOW_HELD_S)):
        x = v[c]
        secs = x.astype(float) if x.dtype.kind in "iuf" else np.full(n, -1.0)
        at = np.flatnonzero(secs >= least)
        slowness.append(_masked_at(n, at, np.array([_seconds_text(d) for d in secs[at].tolist()], dtype=object), ""))
    keys = [K[c].where(quoted, "") if c in _QUOTED_COLUMNS else K[c] if c in K else v[c]
            for c in _EXACT_COLUMNS] + [*slowness,
        aaaa_v6, nodata_v6,
        masked(dns_error | holed | nodata | tc_partial, "query"), tc_partial,
        hole,
        (dns_error | holed) & usable,
        np.where(documented, orig_p, np.where(orig_p == 53, 53, np.where(orig_p < 0, -2, -1))),
        masked(documented | asks_read, "resp_h"),
        # (a request to a proxy or a direct HTTP request: the detail prints its duration also when
        # the client gave up sooner; _judge reads it only as that text, to 0.1 s, and against
        # TLS_SILENCE_S)
        printed,
        printed_long,
        (hello_silent | asks_read) & (duration + quiet >= TLS_SILENCE_S),
        connect & (tunnel_bytes > 0),
        np.where(connect, tunnel_close, -1.0),
        hello_silent & (v["resp_pkts"] <= 1),
        masked(asks | http_answer, "http_status"),
        # (and through a proxy: the answer in the tunnel to the client's cleartext, quoted)
        masked(http_answer | connect, "tunnel_http_status"),
        np.where(waiting & (gap >= TLS_SILENCE_S), gap, 0.0),
        # (a handshake whose server was silent before the close: the wait quoted, _silent_close)
        np.where(close_wait >= 0, close_wait, -1.0),
        # (the server's bytes before the close, _close_served: -1 unknown; quoted)
        close_served,
        waiting & (gap + quiet >= TLS_SILENCE_S),
        # (a stalled TCP connection: the wait after the originator's last bytes, quoted)
        np.where(stalling & (stall_gap >= TLS_SILENCE_S), stall_gap, 0.0),
        np.where(stalling, stall_side, 0),
        stalling & (stall_gap + quiet >= TLS_SILENCE_S),
        history.where(asks_read, ""),
        masked(direct_read, "http_host"),
        answered,
        v["resp_bytes"] > 0,
        np.where((isin("conn_state", _NO_ANSWER_STATES) | syn_fin_rst) & ~answered | part_silent, v["orig_pkts"], 0),
        hist,
        (part_silent | unread | part_closes) & sent,
        part_silent & (duration + quiet >= TLS_SILENCE_S),
        # (a ClientHello not read, the client closing after its next flight: the wait quoted)
        np.where(unread & (blind_wait >= TLS_SILENCE_S), blind_wait, 0.0),
        np.where(unread, np.where(blind_next < SMALLEST_SEALED, blind_next, -1), -1),
        # (and the server's whole answer, when shorter than any encrypted record: quoted)
        np.where(unread & (v["resp_bytes"] < SMALLEST_SEALED), v["resp_bytes"], -1),
        # (a binary answer to the ClientHello: the server's byte count quoted, _binary_text)
        np.where(~eq("server_binary", ""), v["resp_bytes"], -1),
        # (a partial TCP flow with only the responder's packets: not judged, its count quoted)
        np.where(tcp & partial & (v["orig_pkts"] == 0), v["resp_pkts"], -1),
        # (a partial TCP flow whose responder sent only resets or FINs: both counts quoted)
        unasked,
        np.where(part_closes, v["orig_pkts"], -1),
        np.where(part_closes, v["resp_pkts"], -1),
        closes_kind,
        # (a handshake the originator never acknowledged, or one the responder reset before any
        # data: _handshake_end; the counts quoted)
        hs_end,
        np.where(hs_unacked, v["orig_pkts"], -1),
        np.where(hs_unacked, v["resp_pkts"], -1),
        # (a UDP flow whose datagrams all arrived in part: the counts quoted)
        np.where(unreassembled, v["resp_pkts"], -1),
        np.where(unreassembled, v["orig_pkts"], -1),
        # (a TCP flow whose data came only as fragments never captured whole: the bytes quoted,
        # _fragments_lost)
        np.where(unreassembled & tcp, v["orig_bytes"], -1),
        np.where(unreassembled & tcp, v["resp_bytes"], -1),
        unreassembled & tcp & (duration + quiet >= TLS_SILENCE_S),
        hs_unacked & (duration + quiet >= TLS_SILENCE_S),
        # (TCP to a broadcast or multicast address: its address quoted, group_tcp_detail)
        masked(tcp & group_cast, "resp_h"),
        # (a responder's FIN right after the handshake: judged only within TLS_SILENCE_S)
        hs_closed & (duration < TLS_SILENCE_S),
        # (a flow seen one way, _one_way and _partial_silence: the bytes its acknowledgements
        # show quoted, whether it sent data, closed, waited)
        np.where(one_way, v["resp_bytes"], -1),
        one_way & sent,
        one_way & closed_o[hist_codes],
        one_way & (duration + quiet >= TLS_SILENCE_S),
        # (only the responder's packets, its SYN-ACK among them: not "started mid-connection")
        np.where(tcp & (v["orig_pkts"] == 0), has_synack[hist_codes], 0),
        masked(dp_reset, "resp_h"),
        near,
        local,
        # (opened from outside to a cloud server's port on a local address: both addresses quoted)
        masked(inbound, "orig_h"),
        masked(inbound, "resp_h"),
        # (opened towards an agent, told by its own earlier connection to the cloud: likewise)
        masked(tcp & ~eq("opened_cloud", ""), "orig_h"),
        masked(tcp & ~eq("opened_cloud", ""), "resp_h"),
        # (opened from an address a cloud server's name was resolved to: likewise)
        masked(tcp & ~eq("orig_cloud_name", ""), "orig_h"),
        masked(tcp & ~eq("orig_cloud_name", ""), "resp_h"),
        # (unanswered SYNs answered from elsewhere: the address contacted quoted beside the other)
        masked(tcp & ~eq("answered_from", ""), "resp_h"),
        # (a UDP datagram to a group, or a unicast one to a port the page documents for a group: its
        # address is in the detail when the page documents another delivery for the port)
        masked(on["udp"] & (group_cast | group_port), "resp_h"),
        masked(local_cloud, "resp_h"),
        np.where(req_reset, ob if ob.dtype.kind in "iu" else 0, -1),
        req_reset & closed_o[hist_codes],
    ]
    code, card = np.zeros(n, np.int64), 1
    for k in keys:
        c, m = (k.codes, k.count) if isinstance(k, _Coded) else _codes(k)
        if m == 1:
            continue    # (one value: it splits nothing)
        if card * m >= _KEY_LIMIT:  # renumber the combined key densely before it could overflow
            code, seen = pd.factorize(code)
            card = max(len(seen), 1)
        code, card = code * m + c, card * m
    full = np.zeros(len(flows), np.int64)
    full[rows] = code + 1
    return pd.factorize(full)[0], rows, keys


class _Values(dict):
    """The key's columns by name (:func:`_verdict_keys`): the values of a coded column
    (:class:`_Coded`, in ``coded``) made the first time they are asked for."""

    def __init__(self, values: dict, coded: dict) -> None:
        super().__init__(values)
        self.coded = coded

    def __missing__(self, name: str) -> np.ndarray:
        values = self[name] = self.coded[name].values
        return values


def _masked(mask: np.ndarray, values: np.ndarray, other) -> "_Coded | np.ndarray":
    """``np.where(mask, values, other)`` coded (:class:`_Coded`), only the values at ``mask``
    hashed; the plain array when one of those is missing (None, NaN: not hashed as a value)."""
    at = np.flatnonzero(mask)
    return _masked_at(len(mask), at, values[at], other, lambda: np.where(mask, values, other))


def _masked_at(n: int, at: np.ndarray, sub: np.ndarray, other, plain=None) -> "_Coded | np.ndarray":
    """``n`` values, ``sub`` at positions ``at`` and ``other`` elsewhere, coded (:class:`_Coded`);
    ``plain()`` (or an error) when one of ``sub`` is missing."""
    if not len(at):
        return _Coded(np.zeros(n, np.int64), 1, np.array([other], dtype=object))
    both = np.empty(len(at) + 1, dtype=object)
    both[0] = other
    both[1:] = sub
    c, u = pd.factorize(both)
    if c.min() < 0:
        if plain is None:
            raise ValueError("a missing value among the coded ones")
        return plain()
    codes = np.zeros(n, np.int64)
    codes[at] = c[1:]
    return _Coded(codes, len(u), np.asarray(u, dtype=object))


def _judge_columns(flows: pd.DataFrame) -> dict:
    """The table's columns :func:`_judge` reads (those of :data:`_JUDGE_COLUMNS` it has), each read
    once (``flows[name]``: a Series, or a frame for a duplicated name) for both the grouping and
    the judging: a numpy array for a column of a numpy dtype, taken with the others at once
    (:func:`~kscc_traffic.flows.arrays_of`: a Series each costs ~35 µs), else a Series."""
    if not flows.columns.is_unique:
        return {c: flows[c] for c in _JUDGE_COLUMNS if c in flows.columns}
    # (the labels and dtypes as a dict: a label looked up in an Index, a dtype in a Series, cost
    # ~1 µs each, for ~115 names)
    dtypes = dict(zip(flows.columns.tolist(), flows.dtypes.tolist()))
    names = [c for c in _JUDGE_COLUMNS if c in dtypes]
    arrays = arrays_of(flows, [c for c in names if isinstance(dtypes[c], np.dtype)])
    return {c: arrays[c] if c in arrays else flows[c] for c in names}


def _values_at(s: pd.Series | np.ndarray, rows: np.ndarray) -> list:
    """The values of column ``s`` (a Series or a numpy array) at positions ``rows`` as :meth:`pandas.Series.tolist` gives
    them (a numpy column taken from its array, without building the frame of those rows)."""
    if isinstance(s, np.ndarray):
        return s[rows].tolist()
    if isinstance(s.dtype, np.dtype):
        return s.to_numpy()[rows].tolist()
    return s.iloc[rows].tolist()


#: most judgements a :class:`JudgementCache` holds (each ~2 KiB: the key's ~115 parts and the
#: result); the 1 M packet benchmark has 269 distinct ones
JUDGED_MOST = 4096


class JudgementCache:
    """The judgements (:func:`_judge` results) of one analysis, kept from batch to batch: a group
    of flows (:func:`_verdict_keys`) whose key parts, columns and dtypes equal those of a group
    judged before gets its result without judging again. Owned by what runs one analysis (a
    :class:`kscc_traffic.finishing.Finisher`) and handed to :func:`classify`: never shared
    between analyses. It holds judgements for one :class:`~kscc_traffic.rules.RuleSet` (another
    rules object empties it first) and at most ``most`` of them (the oldest dropped first).

    ``hits`` and ``misses`` count the groups found and judged (for tests and profiles).
    """

    def __init__(self, most: int = JUDGED_MOST) -> None:
        if most < 1:
            raise ValueError(f"a judgement cache holds at least one judgement, not {most}")
        self.most = most
        self.hits = self.misses = 0
        self._rules: RuleSet | None = None
        self._held: dict[tuple, tuple] = {}
        self._tables: dict[tuple, int] = {}

    def __len__(self) -> int:
        return len(self._held)

    def clear(self) -> None:
        """Forget every judgement."""
        self._held.clear()
        self._tables.clear()

    def _table(self, rules: RuleSet, series: dict) -> int:
        """The number of the table kind (its columns' names and dtypes) under ``rules`` (another
        rules object than the last: every judgement forgotten first)."""
        if rules is not self._rules:
            self.clear()
            self._rules = rules
        kind = tuple((c, s.dtype) for c, s in series.items())
        return self._tables.setdefault(kind, len(self._tables))

    def get(self, key: tuple):
        """The result held for ``key`` (None when there is none)."""
        found = self._held.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: tuple, result: tuple) -> None:
        """Hold ``result`` for ``key``, dropping the oldest judgement when ``most`` are held."""
        while len(self._held) >= self.most:
            del self._held[next(iter(self._held))]
        self._held[key] = result


def _part_values(part, at: np.ndarray) -> list:
    """A key part's values (:func:`_verdict_keys`) at positions ``at``, as Python objects."""
    return part.at(at) if isinstance(part, _Coded) else part[at].tolist()


def _judge_all(flows: pd.DataFrame, rules: RuleSet, judged: JudgementCache | None = None) -> np.ndarray:
    """(n, 4) object array of :func:`_judge` results: one call per group of
    :func:`_verdict_groups` (its first flow speaks for all; a group ``judged`` holds is not
    judged again), or one per row when the table is unusual."""
    n = len(flows)
    series = _judge_columns(flows)
    needed = list(series)   # (those of _JUDGE_COLUMNS the table has, in that order)
    found = _verdict_keys(flows, rules, series)
    if found is None:
        cols = [series[c].tolist() for c in needed]
        res = np.empty((n, 4), dtype=object)
        for i, values in enumerate(zip(*cols)):
            res[i] = _judge(dict(zip(needed, values)), rules)
        return res
    groups, rows, keys = found
    _, first = np.unique(groups, return_index=True)  # groups are numbered by first appearance
    table = np.empty((len(first), 4), dtype=object)
    todo = np.ones(len(first), bool)    # (the groups to judge)
    group_keys: dict[int, tuple] = {}
    if judged is not None and len(rows):
        # (the group of flows neither TCP nor UDP is not keyed: judged in each table)
        at = np.searchsorted(rows, first)
        keyed = np.flatnonzero(rows[np.minimum(at, len(rows) - 1)] == first)
        table_kind = judged._table(rules, series)
        parts = [_part_values(k, at[keyed]) for k in keys]
        for g, key in zip(keyed.tolist(), zip(*parts)):
            key = (table_kind, key)
            res = judged.get(key)
            if res is None:
                group_keys[g] = key
            else:
                table[g] = res
                todo[g] = False
    todo = np.flatnonzero(todo)
    if len(todo):
        cols = [_values_at(series[c], first[todo]) for c in needed]
        for g, values in zip(todo.tolist(), zip(*cols)):
            res = table[g] = _judge(dict(zip(needed, values)), rules)
            if g in group_keys:
                judged.put(group_keys[g], res)
    return table[groups]


#: an unanswered attempt that began less than this before the capture's last packet (s) may
#: have had no time to get its answer: its detail says so (an RTT to the cloud is well below it,
#: and a SYN's first retransmission comes after 1 s on Linux, 3 s on Windows)
END_MARGIN_S = 1.0
#: the end of the note :func:`classify` adds to such an attempt's detail, after "the capture ended
#: N s after its first packet, " (N seconds, 3 decimals; :data:`kscc_traffic.report.CUT_SHORT` finds it)
CUT_SHORT_TAIL = "maybe before an answer could come"
#: what follows :data:`CUT_SHORT_TAIL` when the capture file ends inside a record (its last record,
#: skipped: :attr:`kscc_traffic.capture.stats.ReadStats.cut_end`) and the flow's last packet came
#: less than :data:`END_MARGIN_S` before the capture's end: the answer may have been that record
LOST_RECORD = ", or the answer was in the capture's last record, lost where the file was cut mid-record"
#: the internal column (bool) a reading sets on its last flows when the file was cut mid-record
#: (:data:`LOST_RECORD`); not a column of the output
CUT_END_COLUMN = "capture_cut_end"
#: that note, at the end of a detail (what :func:`dropped_fallback_detail` leaves out)
_CUT_NOTE = re.compile(r"; the capture ended [0-9.]+ s after its first packet, " + re.escape(CUT_SHORT_TAIL)
                       + "(?:" + re.escape(LOST_RECORD) + r")?\Z")


def classify(flows: pd.DataFrame, rules: RuleSet, capture_end_ns: int | None = None,
             judged: JudgementCache | None = None) -> pd.DataFrame:
    """Return a copy of ``flows`` with the :data:`CLASS_COLUMNS` columns added.

    Flows that agree on everything the judgement reads are judged once (see
    :func:`_verdict_groups`); the result is the same as calling :func:`_judge` on every row,
    then :func:`_note_auth_rounds` on the table (a proxy's 407 whose retry on another
    connection of the table was accepted: ``ok``).

    :param flows: a flow table with the flow, application and name columns
        (``kscc_traffic.flows.FLOW_COLUMNS``, ``inspect.APP_COLUMNS``, ``names.NAME_COLUMNS``).
    :param rules: the documented purposes (:func:`kscc_traffic.rules.load_rules`).
    :param capture_end_ns: the capture's last timestamp (ns since the epoch), when these flows
        are the last of it: a ``no_answer`` flow that began less than :data:`END_MARGIN_S`
        before it keeps its verdict (Zeek's S0 is S0 too) and its ``detail`` says how soon the
        capture ended.
    :param judged: the judgements of the analysis these flows are part of (its other batches),
        used and added to: the result is the same without (:class:`JudgementCache`).
    :returns: a new DataFrame: the rows and index of ``flows`` (same order), its columns, then
        the four of :data:`CLASS_COLUMNS` (replaced where ``flows`` had them): ``purpose`` (rule
        id, ``dns`` or ''), ``verdict`` (``ok``/``blocked``/``unexpected``/``unclassified``),
        ``reason`` and ``detail``, ``object`` columns of ``str``; no row for an empty table.
        ``flows`` itself is not changed. Columns the judgement reads that a table of
        :func:`kscc_traffic.analyze` does not keep (``orig_resent``, ``quiet_s``… of
        ``_JUDGE_COLUMNS``: what the packets showed) are taken as absent, so classifying such a
        table again judges with less evidence than ``analyze`` had: a ``detail`` may say less (a
        TCP reset's hop count), and a verdict resting on that evidence may differ (how long the
        capture went on after an unanswered ClientHello).
    :raises KeyError: ``flows`` lacks a column the judgement cannot do without (``proto``,
        ``resp_p``, ``orig_p``, ``resp_h``, ``orig_h``…: a table with the flow columns has them);
        missing application and name columns (``sni``, ``server_name``…) are taken as empty.
    :raises AttributeError: ``rules`` is not a :class:`~kscc_traffic.rules.RuleSet` (None
        included: :func:`kscc_traffic.load_rules` gives the bundled one).
    """
    out, res = classified(flows, rules, capture_end_ns, judged)
    n = len(out)
    for j, k in enumerate(CLASS_COLUMNS):
        # (object columns, as every text column of the table: a bare array would become a
        # pandas ``str`` column, converted there and back again by the schema)
        out[k] = pd.Series(res[:, j] if n else [], dtype=object, index=out.index)
    return _labels_back(out, flows)


def classified(flows: pd.DataFrame, rules: RuleSet, capture_end_ns: int | None = None,
               judged: JudgementCache | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`classify` without adding its columns: ``(table, results)``, ``table`` a copy of
    ``flows`` (its column labels maybe of another dtype, :func:`~kscc_traffic.names._copy`; any
    :data:`CLASS_COLUMNS` of ``flows`` still there), ``results`` an (n, 4) ``object`` array of
    ``str``, the values of the :data:`CLASS_COLUMNS`, one row per flow. For a caller that builds
    a table of its own from these (:func:`kscc_traffic.analyze.finish_flows`): adding four
    columns to a batch's table costs ~1 ms."""
    out = _copy(flows)
    n = len(out)
    res = _judge_all(out, rules, judged) if n else np.empty((0, 4), dtype=object)
    if n:
        _note_auth_rounds(out, res)
        _note_stale_retries(out, res)
        _note_refused_retries(out, res)
        _note_family_fallbacks(out, res)
        _note_resolved(out, res)
        _note_truncated_partial(out, res)
        _note_other_source(out, res)
        _note_dns_retries(out, res)
        _note_mcast_groups(out, res)
        _note_scans(out, res)
        _note_nat64(out, res)
        _note_nat_copies(out, res)
        _note_idle(out, res)
        _note_gone(res)
    if n and capture_end_ns is not None:
        _note_capture_end(out, res, capture_end_ns)
    return out, res


#: the start of a scan probe's detail after its kind ("a port scan probe from 192.0.2.9: …")
SCAN_PROBE = "probe from "
#: in a scan probe's detail: its port is one a rule documents (the report counts them)
SCAN_DOCUMENTED = "is the documented port of "
#: the end of a scan probe's detail
SCAN_NOT_KSC = "not counted as KSC traffic"


def _probe_end(state: str, history: str, icmp: str) -> str:
    """How a scan probe ended, as a scanner reports the port: ``open``, ``closed`` or
    ``filtered``, and what was seen."""
    h = history_plain(history).lstrip("^")
    if state == "REJ" or ("r" in h and "h" not in h):
        return "closed: the SYN was answered by a reset"
    if "h" in h:
        if "A" in h:
            how = "reset by the responder" if state == "RSTR" else "closed"
            return f"open: connected and {how} at once, no data, a connect() probe"
        if "R" in h:
            return "open: the prober reset the SYN-ACK, a half-open SYN probe"
        return "open: the prober never acknowledged the SYN-ACK, a half-open SYN probe"
    if icmp:
        return "filtered: an ICMP error answered the SYN"
    if "R" in h:
        return "filtered: no answer, then the prober's reset"
    return "filtered: no answer"


def scan_detail(kind: str, row: dict, purpose: str) -> str:
    """The detail of a scan probe (:mod:`kscc_traffic.scans`): ``a port scan probe from
    192.0.2.9: one of 15 or more ports of 198.51.100.5 probed within 300 s (closed: the SYN was
    answered by a reset); TCP 23101 is the documented port of agent_connection, not counted as KSC
    traffic``. ``kind``: ``port_scan`` or ``address_scan``; ``row``: ``orig_h``, ``resp_h``,
    ``resp_p``, ``conn_state``, ``history``, ``icmp_unreachable``; ``purpose``: the rule the
    flow's port would have (its judgement before), '' for none."""
    from .scans import ADDRESS_SCAN_HOSTS, PORT_SCAN, PORT_SCAN_PORTS, SCAN_WINDOW_S
    port = int(row["resp_p"])
    if kind == PORT_SCAN:
        what = f"a port scan {SCAN_PROBE}{row['orig_h']}: one of {PORT_SCAN_PORTS} or more ports of {row['resp_h']}"
    else:
        what = f"an address scan {SCAN_PROBE}{row['orig_h']}: one of {ADDRESS_SCAN_HOSTS} or more hosts on TCP {port}"
    how = _probe_end(str(row.get("conn_state") or ""), str(row.get("history") or ""),
                     str(row.get("icmp_unreachable") or ""))
    doc = f"; TCP {port} {SCAN_DOCUMENTED}{purpose}," if purpose and purpose != "dns" else ";"
    return f"{what} probed within {SCAN_WINDOW_S:g} s ({how}){doc} {SCAN_NOT_KSC}"


#: how the detail of a TCP flow that goes on with a connection after an idle time starts (the idle
#: timeout split it off: :attr:`~kscc_traffic.flows.FlowTable.idle_before`); report.readiness
#: tells such flows from those begun before the capture
IDLE_GOES_ON = "goes on with the connection of this 5-tuple after"
#: how the detail of a connection that worked and was ended by a reset a device on the path sent
#: in the server's name (its TTL not the server's: ``reset_hint``) starts (:func:`_judge`;
#: ``blocked``/``rejected``; report.path_reset_fix advises it)
PATH_RESET = "the connection worked, then a reset in the server's name ended it, sent by a device on the path"
#: the prefix of the detail a partial flow gets from the judgement, replaced for such a flow
_MID_CONNECTION = "capture started mid-connection"
#: what a reset from a device nearer than the server means for such a flow (in place of
#: :data:`~kscc_traffic.inspect.REFUSED_PORT`: no port was refused, the connection had worked)
IDLE_RESET_BY = "the firewall or NAT that dropped the idle connection answered in the server's place"
#: ... and what one with the server's own TTL means (in place of
#: :data:`~kscc_traffic.inspect.REFUSED_OWN_MEANS`: the port worked on this very connection)
IDLE_RESET_OWN = ("the server itself no longer knew the connection after the silence (or a firewall that copies "
                  "its TTL dropped it)")


def idle_note(seconds: float) -> str:
    """The detail's start for a TCP flow that goes on after its 5-tuple was silent for
    ``seconds`` (more than the idle timeout; below 1000 s to 0.1 s, rounded up): ``goes on with the
    connection of this 5-tuple after 3,600 s without a packet (longer than the 300 s TCP idle timeout: a flow of its own, as Zeek's
    conn.log splits it, not a capture started mid-connection)``."""
    from .flows import IDLE_TIMEOUT_NS, TCP
    # (below 1000 s to 0.1 s rounded up: never said as long as the timeout it exceeded)
    said = f"{round(seconds):,}" if seconds >= 1000 else f"{math.ceil(seconds * 10) / 10:.1f}"
    return (f"{IDLE_GOES_ON} {said} s without a packet (longer than the {IDLE_TIMEOUT_NS[TCP] // 10**9} s "
            "TCP idle timeout: a flow of its own, as Zeek's conn.log splits it, not a capture started "
            "mid-connection)")


def _note_idle(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Say (``res`` rows, in place) of each partial flow (reason with ``partial``) that goes on
    with a connection after its 5-tuple was silent past the idle timeout (the internal column
    :data:`~kscc_traffic.flows.IDLE_BEFORE` > 0: the capture holds its earlier part) what it is,
    :func:`idle_note`: it replaces the judgement's "capture started mid-connection" (break-it s50
    #2: a connection idle for an hour was said begun before the capture, and counted so), or
    starts the detail. Verdict and reason unchanged (Zeek's history of such a flow has no SYN
    either). A table without the column: nothing."""
    from .flows import IDLE_BEFORE
    if IDLE_BEFORE not in flows.columns:
        return
    idle = pd.to_numeric(flows[IDLE_BEFORE], errors="coerce").fillna(0.0).to_numpy(float)
    at = np.flatnonzero(idle > 0)
    for i in at.tolist():
        if "partial" not in str(res[i, 2]).split(",") or IDLE_GOES_ON in str(res[i, 3]):
            continue
        pushed = _pushed_into_silence(flows.iloc[i]) if res[i, 1] in ("ok", "unclassified") and res[i, 0] else None
        if pushed is not None:
            # (the server's side sending after the silence, never acknowledged: break-it s55 dp #5)
            res[i, 1], res[i, 2], res[i, 3] = pushed[0], f"{pushed[1]},partial", pushed[2]
        note, detail = idle_note(float(idle[i])), str(res[i, 3] or "")
        if detail.startswith(_MID_CONNECTION):
            detail = detail[len(_MID_CONNECTION):].lstrip(";: ")
        # (a reset from nearer than the server after the silence: the device that forgot the
        # connection answered, no port refused; scenario pass s51 #4)
        detail = _reset_hint_as(detail, IDLE_RESET_BY, IDLE_RESET_OWN)
        res[i, 3] = f"{note}; {detail}" if detail else note


def _reset_hint_as(detail: str, by: str, own: str) -> str:
    """``detail`` with its reset's TTL hint (:func:`.inspect.refused_hint`) worded for a connection
    that had worked: a nearer device's ``by`` in place of :data:`~kscc_traffic.inspect.REFUSED_PORT`,
    the server's own TTL ``own`` in place of :data:`~kscc_traffic.inspect.REFUSED_OWN_MEANS` (no port
    was refused: :func:`_note_idle`, :func:`_note_gone`)."""
    return detail.replace(f"): {REFUSED_PORT}", f"): {by}").replace(f"): {REFUSED_OWN_MEANS}", f"): {own}") \
        .replace(f"): {REFUSED_OWN_MEANS_V6}", f"): {own}")


#: what a reset from a device nearer than the server means for a connection begun before the
#: capture whose data got only resets (:data:`SESSION_GONE`; in place of
#: :data:`~kscc_traffic.inspect.REFUSED_PORT`: no port was refused)
GONE_RESET_BY = "the firewall or NAT that dropped the connection answered in the server's place"
#: ... and what one with the server's own TTL means (in place of
#: :data:`~kscc_traffic.inspect.REFUSED_OWN_MEANS`: the port worked on this very connection)
GONE_RESET_OWN = "the server itself no longer knew the connection (or a firewall that copies its TTL dropped it)"


def _note_gone(res: np.ndarray) -> None:
    """Word (``res`` rows, in place) the reset's TTL hint of a connection begun before the capture
    whose data got only resets (detail :data:`SESSION_GONE`, reason ``rejected``): as what dropped
    the connection answering (:data:`GONE_RESET_BY`, :data:`GONE_RESET_OWN`), not as a refused
    port or "nothing listens on this port there" (break-it s57 real #3); the idle case is
    :func:`_note_idle`'s."""
    # (such a flow is partial, its start not captured: only those rows are read)
    for i in np.flatnonzero(res[:, 2] == "rejected,partial").tolist():
        d = res[i, 3]
        if isinstance(d, str) and SESSION_GONE in d:
            res[i, 3] = _reset_hint_as(d, GONE_RESET_BY, GONE_RESET_OWN)


def _pushed_into_silence(row) -> tuple[str, str, str] | None:
    """(verdict, reason, detail) of a TCP flow that goes on after an idle silence (its earlier part
    in the capture, both directions seen: no capture of one direction) in which the responder sent
    data, 2 packets or more, and the originator nothing but at most a reset, for
    :data:`TLS_SILENCE_S` or more (``duration`` + ``quiet_s``): a push server's data (TCP 13295)
    after the silence that the agent never acknowledged, the connection gone on the way (a
    firewall or NAT that dropped the idle session): ``blocked``/``no_answer``, or
    ``blocked``/``rejected`` when a reset in the originator's name answered it; None otherwise
    (break-it s55 dp #5: such a flow was ok or not judged, its purpose verified). ``row``: the
    flow's columns (``proto``, ``history``, ``orig_pkts``, ``resp_pkts``, ``duration``,
    ``quiet_s``)."""
    history = history_plain(str(row.get("history") or "")).lstrip("^")
    if row.get("proto") != "tcp" or "d" not in history or int(row.get("resp_pkts") or 0) < 2:
        return None
    mine = {ch for ch in history if ch.isupper()}
    if not mine <= {"R"} or float(row.get("duration") or 0) + _quiet(row) < TLS_SILENCE_S:
        return None
    n = int(row.get("resp_pkts") or 0)
    if mine:
        return ("blocked", "rejected", f"the responder's data after the silence ({n} packets) was answered only by a "
                "reset in the originator's name: the connection no longer existed on the way (a firewall or NAT "
                "that dropped the idle session)")
    return ("blocked", "no_answer", f"the responder's data after the silence ({n} packets) was never acknowledged: the "
            "connection no longer existed on the way (a firewall or NAT that dropped the idle session)")


def _note_scans(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Judge again (``res`` rows, in place) each flow that is a probe of a port or address scan
    (:func:`kscc_traffic.scans.scan_kinds`): purpose '', ``unclassified`` (not judged: not KSC
    traffic, whatever its port), reason ``port_scan``/``address_scan``, the detail from
    :func:`scan_detail`."""
    from .scans import scan_kinds
    kinds = scan_kinds(flows)
    # (a row noted already, the live session's table noted again, keeps its detail)
    at = np.flatnonzero((kinds != "") & (res[:, 2] != kinds))
    if not len(at):
        return
    cols = {c: flows[c].to_numpy(dtype=object) if c in flows.columns else np.full(len(flows), "", object)
            for c in ("orig_h", "resp_h", "resp_p", "conn_state", "history", "icmp_unreachable")}
    for i in at.tolist():
        row = {c: v[i] for c, v in cols.items()}
        res[i, 3] = scan_detail(str(kinds[i]), row, str(res[i, 0] or ""))
        res[i, 0], res[i, 1], res[i, 2] = "", "unclassified", str(kinds[i])


def _note_mcast_groups(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Add to the detail (``res[:, 3]``, in place) of each flow neither TCP nor UDP whose
    membership reports join multicast groups (internal column ``mcast_groups``,
    :func:`.inspect._mcast_groups`; none without it) :data:`MCAST_JOINS` naming them."""
    if "mcast_groups" not in flows.columns or "proto" not in flows.columns:
        return
    groups = flows["mcast_groups"].to_numpy(dtype=object)
    proto = flows["proto"].to_numpy(dtype=object)
    for i in np.flatnonzero((groups != "") & (proto != "tcp") & (proto != "udp")).tolist():
        g = groups[i]
        if isinstance(g, str) and g:
            said = MCAST_JOINS.format(groups=g.replace(";", ", "))
            res[i, 3] = f"{res[i, 3]}; {said}" if res[i, 3] else said


#: how the note on a flagged flow to a NAT64 address goes on after :func:`.addresses.nat64_text`
NAT64_NOTE = "the path goes through a NAT64 gateway (the AAAA answer synthesised by DNS64): check that gateway too"


def _note_nat64(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Add to the detail (``res[:, 3]``, in place) of each ``blocked``/``unexpected`` flow whose
    responder is a NAT64 address (:func:`.addresses.nat64_text`: 64:ff9b::/96, or the local-use
    64:ff9b:1::/48) which IPv4 address it carries and :data:`NAT64_NOTE`: a support engineer
    looks for the IPv4 server, and the translator is on the path."""
    if "resp_h" not in flows.columns:
        return
    host = flows["resp_h"].to_numpy(dtype=object)
    flagged = np.flatnonzero((res[:, 1] == "blocked") | (res[:, 1] == "unexpected"))
    for i in flagged[np.array([str(host[i]).startswith("64:ff9b:") for i in flagged.tolist()], bool)].tolist() \
            if len(flagged) else []:
        said = nat64_text(str(host[i]))
        if said:
            # (an ICMP error from a NAT64 address: an IPv4 router's, translated; break-it s56 v6 #8)
            # (not the destination's own address: a port unreachable from the server itself)
            res[i, 3] = _NAT64_SENDER.sub(lambda m, own=str(host[i]): m.group(0) if m.group(2) == own
                                          else _nat64_sender(m), str(res[i, 3]))
            note = f"{said}: {NAT64_NOTE}"
            res[i, 3] = f"{res[i, 3]}; {note}" if res[i, 3] else note


#: how the detail of a NAT's translated copy of a connection captured on both sides of the NAT
#: goes on, before its inside copy's endpoint (:func:`_note_nat_copies`; the report counts them)
NAT_OUTSIDE_COPY = "the NAT's translated copy of"
#: ... and the end of that note
NAT_OUTSIDE_END = ("'s connection (captured on both sides of the NAT: the same SYN, one hop on; one connection, "
                   "counted with its inside copy)")
#: how the note of an unanswered connection's inside copy whose translated copy was captured
#: leaving unanswered too starts (:func:`_note_nat_copies`; the report's advice reads it)
NAT_LEFT = "its SYNs left this device translated by its NAT as"
#: ... and its end: where the block is
NAT_LEFT_END = ("unanswered there too (the outside copy shows them leaving): the block is beyond this device, "
                "in an upstream firewall, at the provider or at the server")
#: how the note of an unanswered connection's inside copy whose translated copy was answered starts
NAT_DROPPED = "the server answered its translated copy"
#: ... and its end
NAT_DROPPED_END = "but no answer came out on the inside: this device (the NAT) did not forward it"
#: ... instead, when the capture ended right after (the answer may not have come out yet)
NAT_DROPPED_LATE = "; no answer came out on the inside before the capture ended (it may not have been forwarded yet)"


def nat_copy_note(side: int, peer: str, answered: bool, peer_answered: bool) -> str:
    """The detail's note of a connection captured on both sides of a NAT (the internal columns of
    :data:`kscc_traffic.natpairs.NAT_SIDE`…): ``side`` :data:`~kscc_traffic.natpairs.OUTSIDE`, the
    NAT's translated copy: ``the NAT's translated copy of 192.0.2.10:50000's connection (…)``;
    :data:`~kscc_traffic.natpairs.INSIDE`, the client's copy, ``peer`` the translated one's
    originator endpoint text: unanswered both ways (``answered``, ``peer_answered``: a responder
    packet seen on that copy), where the block is (:data:`NAT_LEFT`); unanswered inside but
    answered outside, the NAT kept the answer (:data:`NAT_DROPPED`); else where it left as. ''
    for any other ``side``. ``peer`` is packet-derived text, quoted by the caller's output."""
    from .natpairs import INSIDE, OUTSIDE
    if side == OUTSIDE:
        return f"{NAT_OUTSIDE_COPY} {peer}{NAT_OUTSIDE_END}"
    if side != INSIDE:
        return ""
    if not answered and not peer_answered:
        return f"{NAT_LEFT} {peer}, {NAT_LEFT_END}"
    if not answered:
        return f"{NAT_DROPPED} ({peer}), {NAT_DROPPED_END}"
    return f"it left this device translated by its NAT as {peer} (the outside copy was captured too)"


def _note_nat_copies(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Add to the detail (``res[:, 3]``, in place) of each connection captured on both sides of a
    NAT (the internal column :data:`kscc_traffic.natpairs.NAT_SIDE` not 0, set by
    :class:`kscc_traffic.natpairs.NatWatch`) :func:`nat_copy_note`. A table without the column
    (or with it empty, NaN: a batch without pairs joined to one with some): nothing."""
    from .natpairs import NAT_PEER, NAT_PEER_ANSWERED, NAT_SIDE
    if NAT_SIDE not in flows.columns:
        return
    side = pd.to_numeric(flows[NAT_SIDE], errors="coerce").fillna(0).to_numpy(np.int64)
    at = np.flatnonzero(side > 0)
    if not len(at):
        return
    peer = flows[NAT_PEER].to_numpy(dtype=object) if NAT_PEER in flows.columns else np.full(len(flows), "", object)
    peer_ok = (flows[NAT_PEER_ANSWERED].fillna(False).to_numpy(dtype=bool) if NAT_PEER_ANSWERED in flows.columns
               else np.zeros(len(flows), bool))
    answered = (pd.to_numeric(flows["resp_pkts"], errors="coerce").fillna(0).to_numpy(np.int64) > 0
                if "resp_pkts" in flows.columns else np.zeros(len(flows), bool))
    for i in at.tolist():
        note = nat_copy_note(int(side[i]), str(peer[i] or ""), bool(answered[i]), bool(peer_ok[i]))
        if note:
            res[i, 3] = f"{res[i, 3]}; {note}" if res[i, 3] else note


def note_nat_copies(flows: pd.DataFrame) -> None:
    """:func:`_note_nat_copies` on a table classified already (its ``detail`` column replaced in
    place): what a table whose NAT copies were marked after :func:`classify` (the tshark engine's
    whole capture) needs. Nothing without the internal column
    :data:`kscc_traffic.natpairs.NAT_SIDE` or without the :data:`CLASS_COLUMNS`."""
    from .natpairs import NAT_SIDE
    if NAT_SIDE not in flows.columns or any(c not in flows.columns for c in CLASS_COLUMNS):
        return
    res = flows[list(CLASS_COLUMNS)].to_numpy(dtype=object).copy()
    _note_nat_copies(flows, res)
    flows["detail"] = pd.Series(res[:, list(CLASS_COLUMNS).index("detail")], dtype=object, index=flows.index)


#: an ICMP error's sender in a detail that is a NAT64 address (``… (1/1) from 64:ff9b::c633:64fe``)
_NAT64_SENDER = re.compile(r"(\(\d+/\d+\) from )(64:ff9b:[0-9a-f:]*[0-9a-f])")


def _nat64_sender(m: re.Match) -> str:
    """``from 64:ff9b::c633:64fe (an IPv4 router, 198.51.100.254, its error translated by the NAT64
    gateway)`` for a match of :data:`_NAT64_SENDER`; the text unchanged for no NAT64 address."""
    if not nat64_text(m.group(2)):
        return m.group(0)
    v4 = str(ipaddress.IPv4Address(int(ipaddress.ip_address(m.group(2))) & 0xFFFFFFFF))
    return f"{m.group(1)}{m.group(2)} (an IPv4 router, {v4}, its error translated by the NAT64 gateway)"


#: an answer from another address pairs with a query nothing answered when it came at most this
#: long (s) after the query flow's last packet (a stub resolver waits 1-5 s before asking again:
#: Windows 1 s, glibc 5 s); no more than the DNS flows' idle timeout (10 s), which a chunked
#: reading relies on (:class:`kscc_traffic.chunked._OtherSource`)
OTHER_SOURCE_S = 5.0
#: how the detail of a DNS query answered only from another address starts (reason ``wrong_source``)
OTHER_SOURCE = "DNS query answered from another address"
#: why that answer is no answer for the client, after the addresses (:data:`OTHER_SOURCE`)
OTHER_SOURCE_WHY = ("stub resolvers (glibc, Windows) drop an answer from another address than the one asked "
                    "(\"reply from unexpected source\"), so the name did not resolve: a multihomed resolver "
                    "answering from its other address, or a DNS redirect/NAT rule that does not rewrite the "
                    "answer's source back")
#: how the detail of that answer's own flow starts (``unclassified``, reason ``wrong_source``)
OTHER_SOURCE_ANSWER = "DNS answer from another address than the client asked"


def _dns_question_text(key: str) -> str:
    """``ID 0x1a2b for eu1.ksc.kaspersky.com AAAA`` of one :func:`.inspect.dns_key_text` key (its
    name already escaped)."""
    _, txid, qtype, name = split_dns_key(key)
    return f"ID 0x{txid:04x} for {name} {_qtype_text(qtype)}"


def other_source_answers(flows: pd.DataFrame, queries: np.ndarray) -> dict[int, tuple[int, str]]:
    """The answers from another address of DNS queries nothing answered: row of ``queries`` ->
    (row of its answer's flow, the key they share: :func:`.inspect.dns_key_text` of the query).

    :param flows: a flow table with the internal column :data:`.inspect.DNS_KEYS` (none: {}).
    :param queries: bool per row: the UDP DNS flows to pair (a query nothing answered).

    A query flow (the originator's datagrams to port 53 alone, ``resp_pkts`` 0) pairs with an
    answer flow (a UDP flow of responses alone from port 53 to the query's originator address
    and port, from another address than the query's responder) whose first packet came no
    sooner than the query's and at most :data:`OTHER_SOURCE_S` after its last one, and one of
    whose responses has the transaction ID and first question (name case-insensitively, type)
    of one of its queries: what the client would have accepted from the address asked. The
    earliest such answer; several queries may share one (the same query sent to two resolvers
    from one port)."""
    at = np.flatnonzero(queries)
    if not len(at) or DNS_KEYS not in flows.columns:
        return {}
    got = _columns(flows, (DNS_KEYS, "proto", "orig_h", "resp_h", "orig_p", "resp_p", "orig_pkts", "resp_pkts",
                           "ts_ns", "duration"))
    keys = np.asarray(got[DNS_KEYS], dtype=object)
    proto = np.asarray(got["proto"], dtype=object)
    cand = np.flatnonzero((keys != "") & (proto == "udp"))
    if not len(cand):
        return {}
    oh, rh = np.asarray(got["orig_h"], dtype=object), np.asarray(got["resp_h"], dtype=object)
    op, rp = np.asarray(got["orig_p"], dtype=np.int64), np.asarray(got["resp_p"], dtype=np.int64)
    opk, rpk = np.asarray(got["orig_pkts"], dtype=np.int64), np.asarray(got["resp_pkts"], dtype=np.int64)
    ts = np.asarray(got["ts_ns"], dtype=np.int64)
    dur = np.nan_to_num(np.asarray(got["duration"], dtype=float), nan=0.0).clip(min=0.0)
    # the answer flows by their client (address, port): (first packet, row, its response keys)
    answers: dict[tuple, list] = {}
    for i in cand.tolist():
        if opk[i] == 0 and rp[i] == 53:
            client, server = (oh[i], int(op[i])), rh[i]
        elif rpk[i] == 0 and op[i] == 53:
            client, server = (rh[i], int(rp[i])), oh[i]
        else:
            continue
        got = {k[2:].lower() for k in str(keys[i]).split("\n") if k.startswith("R ")}
        if got:
            answers.setdefault(client, []).append((int(ts[i]), i, server, got))
    out: dict[int, tuple[int, str]] = {}
    if not answers:
        return out
    starts = {}
    for client, near in answers.items():
        near.sort(key=lambda x: (x[0], x[1]))
        starts[client] = [x[0] for x in near]
    for q in at.tolist():
        if proto[q] != "udp" or rp[q] != 53 or rpk[q] != 0 or not keys[q]:
            continue
        client = (oh[q], int(op[q]))
        near = answers.get(client)
        if not near:
            continue
        asked = [k for k in str(keys[q]).split("\n") if k.startswith("Q ")]
        until = int(ts[q]) + int(dur[q] * 1e9) + int(OTHER_SOURCE_S * 1e9)
        # (the answers begun in [the query's start, until], earliest first)
        for j in range(bisect.bisect_left(starts[client], int(ts[q])), len(near)):
            t, a, server, got = near[j]
            if t > until:
                break
            if server == rh[q]:
                continue
            hit = next((k for k in asked if k[2:].lower() in got), None)
            if hit is not None:
                out[q] = (a, hit)
                break
    return out


def wrong_source_answers(flows: pd.DataFrame) -> np.ndarray:
    """bool per row of ``flows``: a DNS answer from another address than the client asked, no
    lookup of its own (:func:`_note_other_source`): in a classified table, ``unclassified`` with
    reason ``wrong_source``; in one not classified yet (a chunked reading's leaving rows, with
    :data:`.inspect.DNS_KEYS`), the answers :func:`other_source_answers` pairs with the UDP
    queries to port 53 that got no datagram back."""
    n = len(flows)
    if not n:
        return np.zeros(0, bool)
    if "reason" in flows.columns and "verdict" in flows.columns:
        got = _columns(flows, ("reason", "verdict"))
        return ((np.asarray(got["reason"], dtype=object) == "wrong_source")
                & (np.asarray(got["verdict"], dtype=object) == "unclassified"))
    out = np.zeros(n, bool)
    if DNS_KEYS not in flows.columns or not all(c in flows.columns for c in ("proto", "resp_p", "resp_pkts")):
        return out
    got = _columns(flows, (DNS_KEYS, "proto", "resp_p", "resp_pkts"))
    queries = ((np.asarray(got[DNS_KEYS], dtype=object) != "") & (np.asarray(got["proto"], dtype=object) == "udp")
               & (np.asarray(got["resp_p"], dtype=np.int64) == 53) & (np.asarray(got["resp_pkts"], dtype=np.int64) == 0))
    if queries.any():
        for a, _ in other_source_answers(flows, queries).values():
            out[a] = True
    return out


def _note_other_source(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Judge again (``res`` rows, in place) each UDP DNS query nothing answered (``blocked``/
    ``no_answer``, no datagram back) whose answer came from another address
    (:func:`other_source_answers`): ``blocked``, reason ``wrong_source``, the detail
    :data:`OTHER_SOURCE` naming the address the answer came from, then :data:`OTHER_SOURCE_WHY`:
    the answer arrived, the client dropped it; no firewall rule for DNS is the fix. The answer's
    own flow (one way, responses alone: no lookup of its own) becomes ``unclassified``, reason
    ``wrong_source`` (purpose ``dns``), its detail :data:`OTHER_SOURCE_ANSWER` naming the query
    (and what it said before, an error answer's text), so it is not counted as an answered
    lookup (``ok``) beside the query that got nothing."""
    if DNS_KEYS not in flows.columns or "resp_pkts" not in flows.columns:
        return
    queries = (res[:, 0] == "dns") & (res[:, 1] == "blocked") & (res[:, 2] == "no_answer")
    if not queries.any():
        return
    pairs = other_source_answers(flows, queries)
    if not pairs:
        return
    cols = {c: flows[c].to_numpy(dtype=object) for c in ("orig_h", "orig_p", "resp_h", "uid")}
    for q, (a, key) in pairs.items():
        what = _dns_question_text(key)
        asker = endpoint_text(cols["orig_h"][q], cols["orig_p"][q])
        server = cols["resp_h"][a] if str(cols["orig_h"][a]) == str(cols["orig_h"][q]) else cols["orig_h"][a]
        res[q, 0], res[q, 1], res[q, 2] = "dns", "blocked", "wrong_source"
        res[q, 3] = (f"{OTHER_SOURCE}: its answer ({what}) came from {server} (flow {cols['uid'][a]}), not from "
                     f"{cols['resp_h'][q]}, the address asked; {OTHER_SOURCE_WHY}")
        if res[a, 2] != "wrong_source":
            before = str(res[a, 3] or "")
            res[a, 3] = (f"{OTHER_SOURCE_ANSWER}: the answer ({what}) to the query from {asker} to "
                         f"{cols['resp_h'][q]} (flow {cols['uid'][q]}), which the client drops; judged on that "
                         f"query's flow, not counted as an answered lookup" + (f"; the answer: {before}" if before else ""))
            res[a, 0], res[a, 1], res[a, 2] = "dns", "unclassified", "wrong_source"


#: a failed lookup (an error answer, no answer, an ICMP error: ``blocked``) is made good by a
#: lookup of the same name by the same client that got an address, ended no sooner than the
#: failed one began and began at most this long (s) after it ended (:func:`dns_retries`). The
#: stub resolvers ask again well within it: Windows sends a lookup's queries at 0, 1, 2, 4 and
#: 8 s (the next at most 4 s after one unanswered; its other DNS servers from the second on) and
#: stops at 10 s, or at once on an error answer; glibc asks the next server, or again, after its
#: 5 s timeout (``options timeout:5``); an application asking again after a failed lookup does
#: so at once. No more than the DNS flows' idle timeout (10 s), which a chunked reading relies on
#: (:class:`kscc_traffic.chunked._DnsRetries`: every lookup that may make a failed one good has
#: begun when that one leaves, so it is held back only while such a lookup is still open)
DNS_RETRY_S = 10.0
#: the internal column a chunked reading fills for a failed lookup it held back
#: (:class:`kscc_traffic.chunked._DnsRetries`): the lookup that made it good found in any batch,
#: ``(ts_ns, end_ns, uid, server)`` as :func:`dns_retries` gives it, None when none
DNS_RETRY = "dns_retry"
#: what the detail of a failed lookup made good says of the lookup that did
#: (:func:`dns_retry_detail`)
DNS_RETRY_GOT = "got an address"


def dns_client(orig_h, resp_h, orig_p, resp_p):
    """The client of a DNS flow: its originator, but the responder of a flow whose originator is
    the one on port 53 (answers alone captured, the query not)."""
    return resp_h if int(orig_p) == 53 and int(resp_p) != 53 else orig_h


def address_families(answers) -> int:
    """:data:`~kscc_traffic.inspect.DNS_ASKED_A` when a ``dns_answers`` text holds a usable IPv4
    address (:func:`usable_address`), :data:`~kscc_traffic.inspect.DNS_ASKED_AAAA` a usable IPv6
    one, or-ed; 0 for none."""
    bits = 0
    for a in str(answers or "").split(";"):
        if a and a not in _SINKHOLES:
            bits |= DNS_ASKED_AAAA if ":" in a else DNS_ASKED_A
    return bits


def asked_families(asked, keys) -> int:
    """The address types a DNS flow asked for: :data:`~kscc_traffic.inspect.DNS_ASKED_A` /
    :data:`~kscc_traffic.inspect.DNS_ASKED_AAAA` of its ``dns_asked`` (the questions its
    responses answered) and of the questions of its :data:`~kscc_traffic.inspect.DNS_KEYS` (a
    query nothing answered), or-ed; 0 when not known or none (an HTTPS, TXT… question)."""
    bits = int(asked) & (DNS_ASKED_A | DNS_ASKED_AAAA) \
        if isinstance(asked, (int, np.integer)) and not isinstance(asked, (bool, np.bool_)) else 0
    for k in str(keys or "").split("\n"):
        if k.startswith("Q "):
            qtype = split_dns_key(k)[2]
            bits |= DNS_ASKED_A if qtype == 1 else DNS_ASKED_AAAA if qtype == 28 else 0
    return bits


def _dns_failed(flows: pd.DataFrame, res: np.ndarray) -> np.ndarray:
    """The rows (positions) of the failed lookups that a later one may make good: DNS flows
    judged ``blocked`` with a question (``query``), reason ``no_answer``, ``icmp_unreachable``, or
    ``rejected`` for an error answer (``dns_rcode`` not NOERROR; not a sinkhole address: a filter
    blocking the name, nor DNS over TCP refused)."""
    if "query" not in flows.columns or not len(res):
        return np.zeros(0, np.int64)
    at = np.flatnonzero((res[:, 0] == "dns") & (res[:, 1] == "blocked"))
    if not len(at):
        return at
    got = _columns(flows, ("query", "dns_rcode"))
    at = at[np.asarray(got["query"], dtype=object)[at] != ""]
    rcode = np.asarray(got["dns_rcode"], dtype=object) if "dns_rcode" in got else np.full(len(flows), "", object)
    keep = []
    for i in at.tolist():
        base = str(res[i, 2]).split(",")[0]
        keep.append(base in ("no_answer", "icmp_unreachable") or (base == "rejected" and rcode[i] not in DNS_NO_ERROR))
    return at[np.asarray(keep, bool)] if len(at) else at


def dns_retries(flows: pd.DataFrame, failed, good: np.ndarray) -> dict[int, tuple]:
    """The lookups that made failed ones good: row of ``failed`` -> ``(ts_ns, end_ns, uid,
    server)`` of that lookup's flow.

    :param flows: a flow table with ``query``, ``dns_answers``, ``orig_h``, ``resp_h``,
        ``orig_p``, ``resp_p``, ``ts_ns``, ``duration``, ``uid`` (and ``dns_asked``,
        :data:`~kscc_traffic.inspect.DNS_KEYS`, ``capture`` when there).
    :param failed: positions of the failed lookups (:func:`_dns_failed`).
    :param good: bool per row: the lookups that may make one good (a question and an address,
        usable ones only counted, :func:`usable_address`; the query and its answer in the flow:
        no answer alone, from another address than asked, which the client drops).

    A failed lookup is made good by one of the same client (:func:`dns_client`, same
    ``capture``) for the same name (``query``, case and a trailing dot ignored) that got an
    address of a type it asked for (:func:`asked_families`: an A question wants an IPv4 address,
    an AAAA one an IPv6 address; none known: any), whose flow ended no sooner than the failed
    one's began (a retry; or the same question asked of another server that answered after it:
    Windows asks its other DNS servers when the first is slow) and began at most
    :data:`DNS_RETRY_S` after it ended: the earliest to end (then by uid)."""
    failed = [int(i) for i in failed]
    out: dict[int, tuple] = {}
    if not failed or not good.any():
        return out
    n = len(flows)
    col = (lambda c: flows[c].to_numpy(dtype=object) if c in flows.columns else np.full(n, "", object))
    oh, rh = col("orig_h"), col("resp_h")
    op, rp = flows["orig_p"].to_numpy(np.int64), flows["resp_p"].to_numpy(np.int64)
    query, answers, uid, cap = col("query"), col("dns_answers"), col("uid"), col("capture")
    asked = flows["dns_asked"].to_numpy(dtype=object) if "dns_asked" in flows.columns else np.full(n, None, object)
    keys = col(DNS_KEYS)
    ts = flows["ts_ns"].to_numpy(np.int64)
    dur = np.nan_to_num(flows["duration"].to_numpy(float), nan=0.0).clip(min=0.0) if "duration" in flows.columns \
        else np.zeros(n)
    end = ts + (dur * 1e9).astype(np.int64)
    wanted = {(cap[i], dns_client(oh[i], rh[i], op[i], rp[i]), _name_key(query[i])) for i in failed}
    found: dict[tuple, list] = {}
    fams: dict[str, int] = {}
    # (the lookups of the failed ones' clients: numpy first, on either address, the few left
    # looked at one by one)
    clients = {k[1] for k in wanted}
    cand = np.flatnonzero(good & (_among(oh, clients) | _among(rh, clients)))
    for j in cand.tolist():
        k = (cap[j], dns_client(oh[j], rh[j], op[j], rp[j]), _name_key(query[j]))
        if k in wanted:
            a = str(answers[j])
            if a not in fams:
                fams[a] = address_families(a)
            if fams[a]:
                found.setdefault(k, []).append((int(end[j]), str(uid[j]), int(ts[j]), fams[a],
                                                rh[j] if oh[j] == k[1] else oh[j]))
    for i in failed:
        near = found.get((cap[i], dns_client(oh[i], rh[i], op[i], rp[i]), _name_key(query[i])))
        hit = pick_dns_retry(near, int(ts[i]), int(end[i]), str(uid[i]), asked_families(asked[i], keys[i])) \
            if near else None
        if hit is not None:
            out[i] = hit
    return out


def _among(values: np.ndarray, wanted: set) -> np.ndarray:
    """bool per item of ``values`` (an object array): in ``wanted``; numpy's comparisons when
    ``wanted`` holds few (no sort of objects of mixed types), a set look-up per item else."""
    if len(wanted) <= 8:
        out = np.zeros(len(values), bool)
        for w in wanted:
            out |= values == w
        return out
    return np.fromiter((v in wanted for v in values.tolist()), bool, len(values))


def pick_dns_retry(near, ts_ns: int, end_ns: int, uid: str, need: int):
    """Of the lookups ``near`` (``(end_ns, uid, ts_ns, families, server)`` each: the same client's
    for the same name, with a usable address, ``families`` :func:`address_families`), the one
    that makes good a failed lookup whose flow began at ``ts_ns``, ended at ``end_ns``, has uid
    ``uid`` and asked for the address types ``need`` (:func:`asked_families`; 0: any), as
    :func:`dns_retries` says: ``(ts_ns, end_ns, uid, server)`` of it, or None."""
    window = int(DNS_RETRY_S * 1e9)
    hit = [x for x in near if x[0] >= ts_ns and x[2] <= end_ns + window and x[1] != uid and (not need or x[3] & need)]
    if not hit:
        return None
    e, u, t, _, server = min(hit, key=lambda x: (x[0], x[1]))
    return (t, e, u, server)


def dns_retry_detail(head: str, ts_ns: int, retry: tuple, server_asked: str = "") -> str:
    """The detail of a failed lookup (what failed: ``head``, its first packet ``ts_ns``, the
    server it asked ``server_asked``) that a lookup ``retry`` (``(ts_ns, end_ns, uid, server)``,
    :func:`dns_retries`) made good: ``<head>; a retry 2.1 s later got an address (flow <uid>):
    …`` for one begun after it (``a retry of <server>`` when it asked another server); for one
    begun first (the question asked of another server too), when it was asked and answered."""
    at, done, uid, server = int(retry[0]), int(retry[1]), str(retry[2]), str(retry[3])
    if at > int(ts_ns):
        of = f" of {server}" if server_asked and server != str(server_asked) else ""
        said = (f"a retry{of} {_seconds_text((at - int(ts_ns)) / 1e9)} s later {DNS_RETRY_GOT} (flow {uid}): the "
                "failure passed, the name resolved")
    else:
        said = (f"the same name, asked of {server} {_seconds_text((int(ts_ns) - at) / 1e9)} s before, {DNS_RETRY_GOT} "
                f"{_seconds_text(max(done - int(ts_ns), 0) / 1e9)} s after this query (flow {uid}): the client had its "
                "answer (Windows asks its other DNS servers the same question when the first is slow)")
    return f"{head}; {said}"


def _two_way(flows: pd.DataFrame) -> np.ndarray:
    """bool per row: packets both ways (``orig_pkts`` and ``resp_pkts`` above 0): a DNS flow
    holding its query and its answer, which came from the address asked (answers alone in a
    flow: from another address, which the client drops, or their query not captured); all True
    when the table lacks those columns."""
    if "orig_pkts" not in flows.columns or "resp_pkts" not in flows.columns:
        return np.ones(len(flows), bool)
    o, r = flows["orig_pkts"].to_numpy(), flows["resp_pkts"].to_numpy()
    if o.dtype.kind not in "iu" or r.dtype.kind not in "iu":
        o = pd.to_numeric(flows["orig_pkts"], errors="coerce").fillna(0).to_numpy()
        r = pd.to_numeric(flows["resp_pkts"], errors="coerce").fillna(0).to_numpy()
    return (o > 0) & (r > 0)


def _note_dns_retries(flows: pd.DataFrame, res: np.ndarray) -> None:
    """Judge again (``res`` rows, in place) each failed lookup (:func:`_dns_failed`) that a lookup
    of the same name by the same client made good (:func:`dns_retries`; or its
    :data:`DNS_RETRY` column: found in another batch, the earlier to end kept): ``ok`` (``partial``
    kept), the detail :func:`dns_retry_detail` of what failed (an error answer: ``DNS answer
    SERVFAIL for <name>``, its advice gone; else the detail as it was). A failed lookup nothing
    made good keeps its verdict (as does a query answered only from another address,
    ``wrong_source``: the client dropped that answer, the resolver's setup is wrong)."""
    if any(c not in flows.columns for c in ("query", "ts_ns", "orig_h", "resp_h", "orig_p", "resp_p")):
        return      # (a table without the columns that tell a lookup's client and time: not judged so)
    failed = _dns_failed(flows, res)
    if not len(failed):
        return
    n = len(flows)
    got = _columns(flows, ("dns_answers", "query", DNS_RETRY, "ts_ns", "dns_rcode", "orig_h", "resp_h", "orig_p",
                           "resp_p"))
    answers = np.asarray(got["dns_answers"], dtype=object) if "dns_answers" in got else np.full(n, "", object)
    query = np.asarray(got["query"], dtype=object)
    # (a lookup whose query and answer are both in its flow, the answer from the address asked;
    # usable addresses of the type asked: dns_retries, on the failed ones' clients' lookups only)
    good = (query != "") & (answers != "") & (res[:, 2] != "wrong_source") & _two_way(flows)
    found = dns_retries(flows, failed, good)
    given = np.asarray(got[DNS_RETRY], dtype=object) if DNS_RETRY in got else None
    ts = np.asarray(got["ts_ns"], dtype=np.int64)
    rcode = np.asarray(got["dns_rcode"], dtype=object) if "dns_rcode" in got else np.full(n, "", object)
    oh, rh = np.asarray(got["orig_h"], dtype=object), np.asarray(got["resp_h"], dtype=object)
    op, rp = np.asarray(got["orig_p"], dtype=np.int64), np.asarray(got["resp_p"], dtype=np.int64)
    for i in failed.tolist():
        retry = found.get(i)
        if given is not None and isinstance(given[i], tuple) and (retry is None or (given[i][1], given[i][2]) < (retry[1], retry[2])):
            retry = given[i]
        if retry is None:
            continue
        reason = str(res[i, 2]).split(",")
        head = f"DNS answer {rcode[i]} for {query[i]}" if reason[0] == "rejected" else str(res[i, 3])
        res[i, 1], res[i, 2] = "ok", "partial" if "partial" in reason else ""
        server = rh[i] if dns_client(oh[i], rh[i], op[i], rp[i]) == oh[i] else oh[i]
        res[i, 3] = dns_retry_detail(head, int(ts[i]), retry, server)


def _note_capture_end(flows: pd.DataFrame, res: np.ndarray, end_ns: int) -> None:
    """Add to the detail (``res[:, 3]``, in place) of each ``no_answer`` flow that began less
    than :data:`END_MARGIN_S` before ``end_ns`` how soon after its first packet the capture
    ended; not to a TCP connection both sides closed (a FIN from each, or a RST in its
    history, as :func:`kscc_traffic.flows.history_plain` reads it): nothing more could come on
    it, whenever the capture ended (newcomer 29 F5); nor to a flow whose first time is no clock
    reading (:func:`kscc_traffic.flows.no_clock`: Simple Packet Blocks timed 1 ns apart, records
    stamped 0): how soon the capture ended after it is not known (break-it s53 fuzz #4). When the
    flows carry :data:`CUT_END_COLUMN` (the file was cut mid-record) and the flow's last packet came
    less than :data:`END_MARGIN_S` before ``end_ns``, :data:`LOST_RECORD` follows the note."""
    from .flows import no_clock
    start = flows["ts_ns"].to_numpy(np.int64)
    after = end_ns - start
    lost_end = np.zeros(len(flows), bool)
    if CUT_END_COLUMN in flows.columns and "duration" in flows.columns:
        last = start + np.round(flows["duration"].to_numpy(dtype=float) * 1e9).astype(np.int64)
        lost_end = flows[CUT_END_COLUMN].to_numpy(dtype=bool) & (end_ns - last < int(END_MARGIN_S * 1e9))
    near = np.flatnonzero((after < int(END_MARGIN_S * 1e9)) & ~no_clock(start))
    history = flows["history"].to_numpy(dtype=object) if "history" in flows.columns else None
    proto = flows["proto"].to_numpy(dtype=object) if "proto" in flows.columns else None
    # (an answer that came back as fragments never captured whole did come: no note; s52 v6 #1)
    lost = flows["unreassembled"].to_numpy(dtype=object) if "unreassembled" in flows.columns else None
    for i in near.tolist():
        if lost is not None and proto is not None and proto[i] == "udp" and lost[i] in ("resp", "both"):
            continue
        if history is not None and proto is not None and proto[i] == "tcp":
            h = history_plain(str(history[i] or "")).lstrip("^")
            if "R" in h or "r" in h or ("F" in h and "f" in h):
                continue
        if str(res[i, 2]).split(",")[0] == "no_answer" and DROPPED_FALLBACK not in str(res[i, 3]):
            # (a NAT's inside copy whose outside one was answered: the answer may not have been
            # forwarded yet, not "did not forward it"; newcomer s62 #4)
            said = str(res[i, 3]).replace(f", {NAT_DROPPED_END}", NAT_DROPPED_LATE)
            res[i, 3] = (f"{said}; the capture ended {max(after[i], 0) / 1e9:.3f} s after its "
                         f"first packet, {CUT_SHORT_TAIL}" + (LOST_RECORD if lost_end[i] else ""))
