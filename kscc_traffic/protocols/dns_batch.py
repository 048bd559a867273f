"""DNS messages of many datagrams at once, with numpy: what :mod:`kscc_traffic.inspect` reads of
each message, the same as :func:`.dns.parse_message` and :func:`.dns.resolved_names` give.

:func:`parse_simple` takes *n* messages as ranges of one byte buffer and reads, for all of them
together, the header, the one question and the answer records: the question name is a loop over
the label index, the answers a loop over the record index, each step working on every message
that still has one. No Python object per message but its question name text.

Only the common shape is done this way: a message goes to the reference parser ("fallback",
``DnsSimple.simple`` False) when it shows anything else:

* not exactly one question, or a question name that is compressed, longer than 255 octets, cut
  by the end of the message, the root, or holds a byte outside ``[A-Za-z0-9_*-]`` (the
  reference escapes such bytes: :func:`.dns.host_text`);
* in a response, an answer record whose owner is neither a pointer to the question name
  (``0xC00C``) nor the question name's octets again (uncompressed), a CNAME record (the chain is :func:`.dns.resolved_names`'), a record cut by the
  end of the message, or more than :data:`MAX_ANSWERS` answers.

For everything else the results equal the reference's: ``valid`` (at least 12 bytes),
``is_response``, ``rcode``, the first question's name and type, and for a response the
(address, question name) pairs of its A records with 4-byte RDATA and AAAA records with 16-byte
RDATA, in answer order, each distinct address once. The authority and additional sections are
not read (nothing here depends on them). ``tests/test_dns_batch.py`` compares both, message by
message, on generated, mutated and captured messages.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..addresses import dotted_quads, ipv6_text
from . import dns

__all__ = ["DnsSimple", "parse_simple", "MAX_ANSWERS"]

#: answer records walked before a message is handed to the reference parser
MAX_ANSWERS = 64

#: octets of a name's labels that the reference writes as they are (``dns._LDH``)
_LDH = np.zeros(256, bool)
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-*":
    _LDH[_c] = True
del _c

@dataclass
class DnsSimple:
    """What :func:`parse_simple` read of *n* messages; arrays of length *n* unless said.

    ``simple`` (bool): read here; where False every other field is meaningless and the message
    needs the reference parser. ``valid`` (bool): 12 bytes or more (the reference returns a
    message). ``is_response`` (bool, the QR bit), ``rcode`` (int64, the header's 4 bits),
    ``qname`` (object: the question name's text; '' where there is none), ``qtype`` (int64; -1
    without a question). The answers' pairs, flat, in message then answer order, each distinct
    address of a message once: ``pair_msg`` (int64: the message of each pair), ``pair_addr``
    (object: the address text, as :func:`.dns._rdata_value` writes it); a pair's name is its
    message's ``qname``. Queries have no pairs (as :func:`.dns.resolved_names`)."""

    simple: np.ndarray
    valid: np.ndarray
    is_response: np.ndarray
    rcode: np.ndarray
    qname: np.ndarray
    qtype: np.ndarray
    pair_msg: np.ndarray
    pair_addr: np.ndarray


def _u16(b: np.ndarray, at: np.ndarray) -> np.ndarray:
    return (b[at].astype(np.int64) << 8) | b[at + 1]


def parse_simple(buf, start: np.ndarray, end: np.ndarray) -> DnsSimple:
    """Read the messages ``buf[start[i]:end[i]]`` (``buf``: bytes-like or uint8 array; offsets:
    int arrays of the same length, ``start <= end``) as far as their shape is the common one
    (the module's list); every read is guarded by its message's end.

    :returns: :class:`DnsSimple`. Never raises for any bytes."""
    b = buf if isinstance(buf, np.ndarray) else np.frombuffer(buf, np.uint8)
    start = np.asarray(start, np.int64)
    end = np.asarray(end, np.int64)
    n = len(start)
    size = end - start
    valid = size >= 12
    simple = np.ones(n, bool)
    is_resp = np.zeros(n, bool)
    rcode = np.zeros(n, np.int64)
    qtype = np.full(n, -1, np.int64)
    qname = np.empty(n, dtype=object)
    qname[:] = ""
    none = DnsSimple(simple, valid, is_resp, rcode, qname, qtype, np.zeros(0, np.int64),
                     np.zeros(0, object))
    h = np.flatnonzero(valid)
    if not len(h):
        return none
    s = start[h]
    flags = _u16(b, s + 2)
    is_resp[h] = (flags & 0x8000) != 0
    rcode[h] = flags & 0xF
    qd = _u16(b, s + 4)
    an = _u16(b, s + 6)
    simple[h[qd != 1]] = False
    # the question name: a loop over the label index, on the messages still in a name
    rows = h[qd == 1]
    pos = start[rows] + 12
    total = np.ones(len(rows), np.int64)
    name_end = np.full(len(rows), -1, np.int64)
    dots: list[np.ndarray] = []        # (the positions of the label lengths after the first)
    live = np.arange(len(rows))
    first = True
    while len(live):
        p = pos[live]
        e = end[rows[live]]
        inside = p < e
        ln = np.where(inside, b[np.minimum(p, len(b) - 1)], 0).astype(np.int64)
        bad = ~inside | ((ln & 0xC0) != 0) | (p + 1 + ln > e) | (total[live] + ln + 1 > 255)
        if first:
            bad |= ln == 0            # (the root: '.', left to the reference)
        simple[rows[live[bad]]] = False
        done = ~bad & (ln == 0)
        name_end[live[done]] = p[done] + 1
        go = ~bad & (ln != 0)
        if not first:
            dots.append(p[go])
        total[live[go]] += ln[go] + 1
        pos[live[go]] = p[go] + 1 + ln[go]
        live = live[go]
        first = False
    ok = simple[rows]
    rows, name_end = rows[ok], name_end[ok]
    # the question's type and class must be there
    full = name_end + 4 <= end[rows]
    simple[rows[~full]] = False
    rows, name_end = rows[full], name_end[full]
    if not len(rows):
        return none
    # the names' texts: the octets after the first length, each later length made a '.'
    lo = start[rows] + 13
    hi = name_end - 1
    lens = hi - lo
    cut = np.cumsum(lens)
    idx = np.repeat(lo - (cut - lens), lens) + np.arange(int(cut[-1]) if len(cut) else 0)
    octets = b[idx].copy()
    dot = np.isin(idx, np.concatenate(dots)) if dots else np.zeros(len(idx), bool)
    octets[dot] = ord(".")
    wrong = ~_LDH[octets] & ~dot
    if wrong.any():
        msg_of = np.repeat(np.arange(len(rows)), lens)
        bad_rows = np.unique(msg_of[wrong])
        keep = np.ones(len(rows), bool)
        keep[bad_rows] = False
        simple[rows[bad_rows]] = False
    else:
        keep = np.ones(len(rows), bool)
    text = octets.tobytes().decode("ascii", "replace")
    bounds = np.r_[0, cut].tolist()
    names = [text[i:j] for i, j in zip(bounds[:-1], bounds[1:])]
    qname[rows] = names
    qtype[rows] = _u16(b, name_end)
    rows, name_end = rows[keep], name_end[keep]
    # the answers of the responses: a loop over the record index
    resp = is_resp[rows]
    r_rows = rows[resp]
    r_an = an[np.searchsorted(h, r_rows)]
    too_many = r_an > MAX_ANSWERS
    simple[r_rows[too_many]] = False
    r_pos = name_end[resp] + 4
    live = np.flatnonzero(~too_many & (r_an > 0))
    got_msg: list[np.ndarray] = []
    got_kind: list[np.ndarray] = []
    got_at: list[np.ndarray] = []
    k = 0
    q_at = start[r_rows] + 12                     # (each response's question name, on the wire)
    q_len = name_end[resp] - q_at
    while len(live):
        p = r_pos[live]
        e = end[r_rows[live]]
        # the owner: a pointer to the question name, or the question name's octets again
        fits = p + 2 <= e
        q = np.where(fits, p, 0)
        pointer = fits & (b[q] == 0xC0) & (b[q + 1] == 0x0C)
        ql = q_len[live]
        again = ~pointer & (p + ql <= e)
        if again.any():
            w = np.flatnonzero(again)
            lens = ql[w]
            cut = np.cumsum(lens)
            step = np.arange(int(cut[-1])) - np.repeat(cut - lens, lens)
            same = b[np.repeat(p[w], lens) + step] == b[np.repeat(q_at[live[w]], lens) + step]
            differ = np.add.reduceat(~same, cut - lens) > 0
            again[w[differ]] = False
        owner = np.where(pointer, 2, np.where(again, ql, 0))
        fits = (owner > 0) & (p + owner + 10 <= e)
        q = np.where(fits, p + owner, 0)
        owner_ok = fits
        rtype = _u16(b, q)
        rdlen = _u16(b, q + 8)
        data_at = p + owner + 10
        bad = ~owner_ok | (data_at + rdlen > e) | (rtype == dns.TYPE_CNAME)
        simple[r_rows[live[bad]]] = False
        good = ~bad
        a4 = good & (rtype == dns.TYPE_A) & (rdlen == 4)
        a6 = good & (rtype == dns.TYPE_AAAA) & (rdlen == 16)
        got = a4 | a6
        if got.any():
            got_msg.append(live[got])
            got_kind.append(np.where(a4[got], 4, 6))
            got_at.append(data_at[got])
        r_pos[live[good]] = data_at[good] + rdlen[good]
        k += 1
        live = live[good & (k < r_an[live])]
    pair_msg = np.zeros(0, np.int64)
    pair_addr = np.zeros(0, object)
    if got_msg:
        m = np.concatenate(got_msg)
        kind = np.concatenate(got_kind)
        at = np.concatenate(got_at)
        m_row = r_rows[m]
        ok = simple[m_row]
        m, kind, at, m_row = m[ok], kind[ok], at[ok], m_row[ok]
        # answer order within a message: the loop made them record index first
        order = np.lexsort((np.arange(len(m)), m))
        m, kind, at, m_row = m[order], kind[order], at[order], m_row[order]
        addr = np.empty(len(m), dtype=object)
        four = kind == 4
        if four.any():
            addr[four] = dotted_quads(b[at[four][:, None] + np.arange(4)])
        if (~four).any():
            raw = b[at[~four][:, None] + np.arange(16)]
            addr[~four] = [ipv6_text(x.tobytes()) for x in raw]
        # each distinct address of a message once, in answer order
        if len(m):
            _, codes = np.unique(addr.astype(str), return_inverse=True)
            pair = m_row * (int(codes.max()) + 1) + codes.ravel()
            _, first_at = np.unique(pair, return_index=True)
            first_at.sort()
            pair_msg, pair_addr = m_row[first_at], addr[first_at]
        # (rows are in message order already: r_rows is ascending, the sort kept it)
    return DnsSimple(simple, valid, is_resp, rcode, qname, qtype, pair_msg, pair_addr)
