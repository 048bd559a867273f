"""Server names per flow: TLS SNI, then HTTP Host, then DNS answers seen earlier in the capture.

``server_name`` is the name the client asked for; ``name_source`` says where it came from
(``sni``, ``http_host``, ``dns`` or ``''``). For DNS, an address maps to the name at the head of
the CNAME chain that led to it (the name the client looked up), taken from the latest answer
received before the flow started, preferring answers received by the flow's own originator; of
the names an address had (a shared CDN address), one under the host mask of a rule documenting
the flow's port (``*.ksc.kaspersky.com``), looked up before the flow, wins over a later other
one; an address no answer names is named through the IPv4 address it carries (NAT64, DNS64,
mapped).
Names are untrusted text from packets; they are stored as they are and escaped on output.
"""
from __future__ import annotations

import functools
import ipaddress
from itertools import repeat

import numpy as np
import pandas as pd

from .addresses import embedded_ipv4
from .flows import label_index, repeated
from .inspect import DnsAnswers

NAME_COLUMNS: dict[str, tuple[str, str, str]] = {
    "server_name": ("object", "", "name the client asked for (SNI, HTTP Host or DNS), '' if unknown"),
    "name_source": ("object", "", "where server_name comes from: sni, http_host, dns, or ''"),
    "dns_name": ("object", "", "name the responder's address was resolved from (DNS), '' if none"),
}

#: a DNS answer received up to this long after the flow's first packet still names it (ns)
DNS_SLACK_NS = 1_000_000

#: the internal column (never written out) :func:`assign_names` adds: for a TCP flow to a port a
#: rule documents with a host mask, the name under that mask a DNS answer gave for the flow's
#: *originator's* address before the flow started (the responder's own answers first, as
#: :func:`_dns_names` prefers the originator's): a cloud server's address opening the connection,
#: which :func:`kscc_traffic.classify.classify` tells ``wrong_direction``; '' where none
ORIG_CLOUD_NAME = "orig_cloud_name"


@functools.lru_cache(maxsize=1 << 12)
def is_ip_literal(name: str) -> bool:
    """True when ``name`` is an IPv4/IPv6 address rather than a host name (remembered for the
    last few thousand names: each flow group's verdict asks again, and a host name costs an
    exception in :mod:`ipaddress`)."""
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


def _copy(flows: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``flows`` to add columns to: shallow under pandas' copy-on-write (pandas 3, where
    a later change to either frame copies the data first), a deep copy before; its column labels
    an ``object`` Index (:func:`~kscc_traffic.flows.label_index`: the same labels, read and added
    to faster than pandas 3's ``str`` labels a concatenation gives)."""
    out = flows.copy(deep=not _COPY_ON_WRITE)
    if out.columns.dtype != object:
        out.columns = label_index(out.columns)
    return out


def _labels_back(out: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """``out`` (made from :func:`_copy` of ``flows``) with its column labels in the dtype of
    ``flows``' again, as adding the columns to ``flows`` itself leaves them (in place)."""
    if out.columns.dtype != flows.columns.dtype:
        out.columns = out.columns.astype(flows.columns.dtype)
    return out


_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3


def _ids(values: list) -> dict:
    """Each distinct value -> a number (0, 1, …, in order of first appearance)."""
    return {v: i for i, v in enumerate(dict.fromkeys(values))}


def host_masks(rules) -> tuple[str, ...]:
    """The distinct host masks of the rules of ``rules`` (a :class:`~kscc_traffic.rules.RuleSet`)
    that have one, in rule order."""
    return tuple(dict.fromkeys(r.host_mask for r in rules.rules if r.host_mask))


def masks_of(name, masks: tuple[str, ...]) -> tuple[str, ...]:
    """The masks of ``masks`` the DNS name ``name`` is under (as
    :meth:`~kscc_traffic.rules.Rule.matches_host`: ``*.x`` any name ending ``.x``, else the name
    itself; case and a trailing dot ignored); () for a name that is no ``str`` or empty."""
    if not masks or not isinstance(name, str) or not name:
        return ()
    n = name.lower().rstrip(".")
    return tuple(m for m in masks if (n.endswith(m[1:]) if m.startswith("*.") else n == m))


def _port_masks(flows: pd.DataFrame, rules) -> tuple[np.ndarray, tuple[str, ...]]:
    """Per flow: the host masks of the rules documenting its transport and responder port
    (``proto``, ``resp_p``) as bits (int64 array, len(flows): bit ``k`` for the ``k``-th mask of
    :func:`host_masks`, 0 where no such rule has one), and those masks."""
    masks = host_masks(rules)
    bits = np.zeros(len(flows), np.int64)
    if not masks or not len(flows):
        return bits, masks
    proto = flows["proto"].to_numpy(dtype=object)
    port = flows["resp_p"].to_numpy(np.int64)
    of: dict = {}
    for r in rules.rules:
        if r.host_mask:
            same = of.get(r.transport)
            if same is None:
                same = of[r.transport] = proto == r.transport
            on = same & (port >= r.port_lo) & (port <= r.port_hi)
            bits[on] |= 1 << masks.index(r.host_mask)
    return bits, masks


def _name_bits(names: list, masks: tuple[str, ...]) -> np.ndarray:
    """Per name of ``names``: the masks of ``masks`` it is under (:func:`masks_of`) as bits
    (int64 array), each distinct name looked at once."""
    memo: dict = {}
    for nm in names:
        if nm not in memo:
            memo[nm] = sum(1 << masks.index(m) for m in masks_of(nm, masks))
    return np.fromiter(map(memo.__getitem__, names), np.int64, len(names))


def _dns_names(flows: pd.DataFrame, answers: DnsAnswers, port_masks: tuple | None = None) -> np.ndarray:
    """For each flow, the name its responder address was last resolved from before the flow
    started (+ DNS_SLACK_NS): an answer received by the flow's own originator first, else any.
    Of answers received at the same time, the later in the capture (``frame_no``) counts.

    ``port_masks`` (per flow, the host masks of the rules documenting its port, as
    :func:`_port_masks` gives them): where the name so found is under none of its flow's masks, the latest
    answer before the flow whose name is under one wins, of the same originator when the name
    found was its own (else of any): an address shared by several names (a CDN's: the agent
    looked up ``eu1.ksc.kaspersky.com``, then a browser ``cdn.example.net``, both to it) is named
    by the one a KSC agent connects to on that port, not by whichever was looked up last.

    A flow no answer for its very address names is then named as one to the IPv4 address its
    address stands for (:func:`kscc_traffic.addresses.embedded_ipv4`): a flow to
    ``64:ff9b::cb00:7105`` (NAT64, 464XLAT) by the A answer 203.0.113.5, a flow to 203.0.113.5 by
    a mapped AAAA answer ``::ffff:203.0.113.5`` or a DNS64 one ``64:ff9b::cb00:7105`` (break-it 25
    F12), by the same rules.

    Addresses and clients are joined as integer codes and the answer's name is carried as its
    position in ``answers``: the same rows as joining the text, without building text columns."""
    n = len(flows)
    out = repeated("", n)
    if n == 0 or not answers.address:
        return out
    resp = flows["resp_h"].tolist()
    orig = flows["orig_h"].to_numpy(dtype=object)
    t = flows["ts_ns"].to_numpy().astype(np.int64) + DNS_SLACK_NS
    ts = np.array(answers.ts_ns, np.int64)
    frame = np.array(answers.frames(), np.int64)
    answer = _answers_for(resp, orig, t, answers.address, answers.client, ts, frame)
    if port_masks is not None:
        _prefer_documented(answer, port_masks, resp, orig, t, answers, ts, frame)
    missing = np.flatnonzero(answer < 0)
    if len(missing):
        # (a translated match needs a translated text on one side at least: a flow to an IPv4
        # address no answer named can only be named by a mapped or NAT64 answer, and so on)
        if not _any_translated(answers.address):
            missing = missing[np.fromiter(map(_translated, [resp[i] for i in missing.tolist()]), bool, len(missing))]
    if len(missing):
        v4 = [embedded_ipv4(a) for a in answers.address]
        sel = [i for i, k in enumerate(v4) if k is not None]
        if sel:
            flow_v4 = [embedded_ipv4(resp[i]) if isinstance(resp[i], str) else None for i in missing.tolist()]
            at = np.array(sel, np.int64)
            clients = answers.client
            found = _answers_for(flow_v4, orig[missing], t[missing], [v4[i] for i in sel],
                                 [clients[i] for i in sel], ts[at], frame[at])
            answer[missing] = np.where(found >= 0, at[np.maximum(found, 0)], -1)
    found = answer >= 0
    names = np.array(answers.name, dtype=object)
    out[found] = names[answer[found]]
    return out


def _originator_names(flows: pd.DataFrame, answers: DnsAnswers, port_masks: tuple | None) -> np.ndarray:
    """Per flow (object array of ``len(flows)`` texts): :data:`ORIG_CLOUD_NAME`, the name under one
    of its flow's masks (``port_masks``: :func:`_port_masks`' bits and masks) of the latest answer
    naming the flow's originator address received before the flow started (+ DNS_SLACK_NS), the
    responder's own answers first; '' where none, for flows that are not TCP or whose port no
    rule with a host mask documents, and for every flow when ``port_masks`` is None. Only the
    answers under a mask are looked at (a capture's other names cost one test each)."""
    n = len(flows)
    out = repeated("", n)
    if port_masks is None or not n or not answers.address or "orig_h" not in flows:
        return out
    bits, masks = port_masks
    cand = np.flatnonzero((bits != 0) & (flows["proto"].to_numpy(dtype=object) == "tcp"))
    if not len(cand):
        return out
    abits = _name_bits(answers.name, masks)
    at = np.flatnonzero(abits != 0)
    if not len(at):
        return out
    sel = at.tolist()
    found = _answers_for(flows["orig_h"].to_numpy(dtype=object)[cand].tolist(),
                         flows["resp_h"].to_numpy(dtype=object)[cand],
                         flows["ts_ns"].to_numpy().astype(np.int64)[cand] + DNS_SLACK_NS,
                         [answers.address[k] for k in sel], [answers.client[k] for k in sel],
                         np.array(answers.ts_ns, np.int64)[at], np.array(answers.frames(), np.int64)[at])
    hit = np.flatnonzero(found >= 0)
    if len(hit):
        k = at[found[hit]]
        under = (abits[k] & bits[cand[hit]]) != 0
        names = answers.name
        for row, a in zip(cand[hit][under].tolist(), k[under].tolist()):
            out[row] = names[a]
    return out


def _prefer_documented(answer: np.ndarray, port_masks: tuple, resp: list, orig: np.ndarray, t: np.ndarray,
                       answers: DnsAnswers, ts: np.ndarray, frame: np.ndarray) -> None:
    """In place: ``answer`` (per flow, the position in ``answers`` of the answer naming it, or -1)
    replaced by the latest answer under one of the flow's masks (``port_masks``: the bits and
    masks of :func:`_port_masks`) before it, where the name found is under none of them
    (:func:`_dns_names`)."""
    fbits, masks = port_masks
    cand = np.flatnonzero((answer >= 0) & (fbits != 0))
    if not len(cand):
        return
    names, clients = answers.name, answers.client
    abits = _name_bits(names, masks)
    need = cand[(abits[answer[cand]] & fbits[cand]) == 0]
    if not len(need):
        return
    for b in np.unique(fbits[need]).tolist():
        rows = need[fbits[need] == b]
        at = np.flatnonzero(abits & b)
        if not len(at):
            continue
        sel = at.tolist()
        found = _answers_for([resp[i] for i in rows.tolist()], orig[rows], t[rows], [answers.address[k] for k in sel],
                             [clients[k] for k in sel], ts[at], frame[at])
        for i, f in zip(rows.tolist(), found.tolist()):
            if f < 0:
                continue
            k = sel[f]
            # (the name found was the originator's own lookup: only its own lookups replace it)
            if clients[answer[i]] == orig[i] and clients[k] != orig[i]:
                continue
            answer[i] = k


#: how the texts of the addresses that carry an IPv4 address start (:func:`.addresses.embedded_ipv4`)
_TRANSLATED = ("::ffff:", "64:ff9b::")


def _translated(text) -> bool:
    return isinstance(text, str) and text.startswith(_TRANSLATED)


def _any_translated(texts: list) -> bool:
    """``any(map(_translated, texts))``: one join of the texts and a search for each start of
    :data:`_TRANSLATED` after a NUL, when every text is a ``str`` without NUL (address texts); else
    one test per text."""
    try:
        joined = "\x00" + "\x00".join(texts)
    except TypeError:
        return any(map(_translated, texts))
    if joined.count("\x00") != len(texts):
        return any(map(_translated, texts))
    return any("\x00" + start in joined for start in _TRANSLATED)


def _answers_for(flow_addr_keys: list, flow_clients: np.ndarray, t: np.ndarray, ans_addr_keys: list,
                 ans_clients: list, ts: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """For each flow (address key, client text, time ns): the position of the answer (address
    key, client, time, frame) that names it (:func:`_dns_names`), or -1. A flow key not among
    the answers' (or None) gets -1."""
    n = len(flow_addr_keys)
    m = len(ans_addr_keys)
    addr_id = _ids(ans_addr_keys)
    ans_addr = np.fromiter(map(addr_id.__getitem__, ans_addr_keys), np.int64, m)
    flow_addr = np.fromiter(map(addr_id.get, flow_addr_keys, repeat(-1)), np.int64, n)
    result = np.full(n, -1, np.int64)
    wanted = flow_addr >= 0
    if not wanted.any():
        return result
    client_id = _ids(ans_clients)
    ans_client = np.fromiter(map(client_id.__getitem__, ans_clients), np.int64, m)
    flow_client = np.fromiter(map(client_id.get, flow_clients[wanted].tolist(), repeat(-1)), np.int64)
    tw = t[wanted]
    # the same client's latest answer for the address, else any client's
    pair = np.where(flow_client >= 0, flow_addr[wanted] * len(client_id) + flow_client, -1)
    answer = _latest_before(pair, tw, ans_addr * len(client_id) + ans_client, ts, frame)
    miss = np.flatnonzero(answer < 0)
    if len(miss):   # (each flow's answer is its own: only the missed ones looked up again)
        answer[miss] = _latest_before(flow_addr[wanted][miss], tw[miss], ans_addr, ts, frame)
    result[wanted] = answer
    return result


def _latest_before(key: np.ndarray, t: np.ndarray, ans_key: np.ndarray, ans_t: np.ndarray,
                   ans_frame: np.ndarray) -> np.ndarray:
    """For each (key, t): the position of the answer with that key received at or before ``t``
    that is the latest (time, then frame, then position), or -1. An as-of join in numpy: answers
    sorted by (key, time rank, frame), one binary search per flow (key -1 never matches)."""
    both = np.concatenate([ans_t, t])
    _, rank = np.unique(both, return_inverse=True)
    rank = rank.reshape(-1).astype(np.int64)
    width = int(rank.max()) + 1
    ukeys, kinv = np.unique(np.concatenate([ans_key, key]), return_inverse=True)
    kinv = kinv.reshape(-1).astype(np.int64)
    m = len(ans_key)
    a_comp = kinv[:m] * width + rank[:m]
    order = np.lexsort((ans_frame, a_comp))       # stable: position breaks the last tie
    a_sorted = a_comp[order]
    pos = np.searchsorted(a_sorted, kinv[m:] * width + rank[m:], side="right") - 1
    ok = (pos >= 0) & (key >= 0)
    ok[ok] &= (a_sorted[pos[ok]] // width) == kinv[m:][ok]
    return np.where(ok, order[np.maximum(pos, 0)], -1)


#: the values of ``name_source`` (:func:`assign_names` indexes them)
_SOURCES = np.array(["sni", "http_host", "dns", ""], dtype=object)


def assign_names(flows: pd.DataFrame, answers: DnsAnswers, known: dict | None = None,
                 rules=None) -> pd.DataFrame:
    """Return ``flows`` with :data:`NAME_COLUMNS` added (see module docstring).

    :param known: uid -> ``(dns_name, orig_cloud_name)`` already found for a flow (one that
        started in an earlier batch of a chunked analysis, whose answers may since have been
        forgotten; :data:`ORIG_CLOUD_NAME`); used as they are.
    :param rules: the :class:`~kscc_traffic.rules.RuleSet` whose host masks a flow's DNS name is
        preferred under (:func:`_dns_names`); None: the latest name, whatever it is.
    """
    n = len(flows)
    out = _copy(flows)
    pm = _port_masks(flows, rules) if rules is not None and n and "proto" in flows and "resp_p" in flows else None
    dns_name = _dns_names(flows, answers, pm)
    orig_name = _originator_names(flows, answers, pm)
    if known and n:
        uid = flows["uid"].to_numpy(dtype=object)
        for i, u in enumerate(uid.tolist()):
            v = known.get(u)
            if v is not None:
                dns_name[i], orig_name[i] = v
    sni = out["sni"].to_numpy(dtype=object) if "sni" in out else repeated("", n)
    host = out["http_host"].to_numpy(dtype=object) if "http_host" in out else repeated("", n)
    has_sni = sni.astype(bool)
    has_host = host.astype(bool)
    has_dns = dns_name.astype(bool)
    name = np.where(has_sni, sni, np.where(has_host, host, dns_name)).astype(object)
    source = _SOURCES[np.where(has_sni, 0, np.where(has_host, 1, np.where(has_dns, 2, 3)))]
    cols = {k: pd.Series(v, dtype=object, index=out.index)     # (object, not pandas str)
            for k, v in (("server_name", name), ("name_source", source), ("dns_name", dns_name),
                         (ORIG_CLOUD_NAME, orig_name))}
    for k in [k for k in cols if k in out.columns]:
        out[k] = cols.pop(k)
    if cols:
        # (the new ones at once: a frame of many columns added one by one is fragmented, and pandas
        # warns at the next insert)
        out = pd.concat([out, pd.DataFrame(cols, index=out.index)], axis=1)
    return _labels_back(out, flows)
