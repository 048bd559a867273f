"""The faster DNS / application-inspection paths against the simple versions they replaced.

- ``inspect._udp_dns`` (each distinct DNS datagram parsed once, spread over its packets with
  numpy) == the former per-packet loop of ``inspect_flows`` (:func:`udp_dns_reference`, which
  also gives each flow's ``dns_rcode`` and ``dns_answers`` over all its responses the simple
  way), on
  every sample and corpus capture and on generated DNS traffic (repeated messages with other
  ids, CNAME chains, several answers, garbage and cut payloads, queries, IPv4 and IPv6);
- ``http.parse_request`` (plain heads read as text at once) == the former byte-by-byte header
  loop (:func:`parse_request_reference`); ``dns.text_from_bytes`` (plain ASCII as is) == the
  former function;
- ``answer_store.AnswerStore`` (rows deduplicated and folded by C loops, ``advance`` folding
  each pair's last answer once) == the former store (:class:`ReferenceAnswerStore`) on random
  batches with carried packets, late answers and cutoffs (and, where the former store kept the
  first of an answer repeated within a batch, the new one keeps the last, as the whole list does);
- ``inspect._kinds`` (HTTP status lines found on whole arrays) == ``inspect._kind`` stream by
  stream; ``streams.stable_order`` == a stable argsort; ``inspect._in_sorted`` == ``np.isin``;
  ``inspect._first_segment_hints`` without a sort when the packets are in time order == the
  lexsort it replaced.
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, shared_corpus
from kscc_traffic import build_flows, decode, load_rules, read_frames
from kscc_traffic import inspect as insp
from kscc_traffic.analyze import server_port_fn
from kscc_traffic.answer_store import AnswerStore
from kscc_traffic.errors import KsccTrafficError
from kscc_traffic.flows import UDP, address_text
from kscc_traffic.inspect import DnsAnswers
from kscc_traffic.names import _dns_names
from kscc_traffic.protocols import dns, http
from kscc_traffic.text import CONTROL
from pcapbuild import pcap_bytes, udp

SERVER_PORT = server_port_fn(load_rules())


# ============================================================================ UDP DNS

def udp_dns_reference(ft) -> tuple[np.ndarray, np.ndarray, DnsAnswers, np.ndarray, np.ndarray]:
    """(query, service, answers) as the former per-packet loop of inspect_flows made them (less the
    responses that match no query), and
    per flow, packet by packet in row order over all its responses: the rcode name of the first
    response that is not NOERROR, else NOERROR (``dns_rcode``), and the distinct answer
    addresses, the first MAX_DNS_ANSWERS (``dns_answers``)."""
    n = len(ft.flows)
    query = np.full(n, "", object)
    rcode = np.full(n, "", object)
    addrs = [[] for _ in range(n)]
    service = ft.flows["service"].to_numpy(dtype=object).copy()
    answers = DnsAnswers()
    p = ft.packets
    c = p.cols
    rows = np.nonzero((ft.pkt_flow >= 0) & (c["proto"] == UDP) & (c["pl_cap"] > 0)
                      & ((c["sport"] == 53) | (c["dport"] == 53)))[0]
    dst_text = address_text(c["dst_hi"][rows], c["dst_lo"][rows]) if len(rows) else None
    # (a response among a flow's first DNS_MATCH_PACKETS packets matching no query among them,
    # by ID and question, name case-insensitively, is none: insp.stray_responses)
    # (the first DNS_MATCH_PACKETS packets of each flow, time order: those matched)
    every = np.flatnonzero(ft.pkt_flow >= 0)
    every = every[np.lexsort((every, c["ts_ns"][every], ft.pkt_flow[every]))]
    head, seen = set(), {}
    for i in every.tolist():
        fl = int(ft.pkt_flow[i])
        seen[fl] = seen.get(fl, 0) + 1
        if seen[fl] <= insp.DNS_MATCH_PACKETS:
            head.add(i)
    asked: dict[int, set] = {}
    for i in rows:
        msg = dns.parse_message(p.payload(int(i)))
        if int(i) in head and msg is not None and not msg.is_response and msg.questions:
            q = msg.questions[0]
            asked.setdefault(int(ft.pkt_flow[i]), set()).update({(msg.id, q[0].lower(), q[1]), msg.id})
    for j, i in enumerate(rows):
        data = p.payload(int(i))
        msg = dns.parse_message(data)
        if msg is None:
            continue
        f = int(ft.pkt_flow[i])
        if msg.questions and not query[f]:
            query[f] = msg.questions[0][0]
        service[f] = "dns"
        if msg.is_response and f in asked and int(i) in head:
            key = (msg.id, msg.questions[0][0].lower(), msg.questions[0][1]) if msg.questions else msg.id
            if key not in asked[f]:
                continue
        if msg.is_response:
            if rcode[f] in ("", "NOERROR"):
                rcode[f] = dns.rcode_name(msg.rcode)
            for a, _ in dns.resolved_names(msg):
                if a not in addrs[f]:
                    addrs[f].append(a)
            answers.add(int(c["ts_ns"][i]), str(dst_text[j]), msg, None, int(c["frame"][i]))
    text = np.array([";".join(a[:insp.MAX_DNS_ANSWERS]) for a in addrs], object)
    return query, service, answers, rcode, text


def check_udp_dns(ft) -> int:
    """_udp_dns == the reference on ``ft``; returns the number of answers."""
    n = len(ft.flows)
    query = np.full(n, "", object)
    service = ft.flows["service"].to_numpy(dtype=object).copy()
    answers = DnsAnswers()
    rcode = np.full(n, "", object)
    addresses = np.full(n, "", object)
    insp._udp_dns(ft, query, service, answers, rcode, addresses)
    r_query, r_service, r_answers, r_rcode, r_addresses = udp_dns_reference(ft)
    assert query.tolist() == r_query.tolist()
    assert rcode.tolist() == r_rcode.tolist()
    assert addresses.tolist() == r_addresses.tolist()
    assert service.tolist() == r_service.tolist()
    got = (answers.ts_ns, answers.client, answers.address, answers.name, answers.frames())
    ref = (r_answers.ts_ns, r_answers.client, r_answers.address, r_answers.name, r_answers.frames())
    assert got == ref
    assert all(type(v) is int for v in answers.ts_ns + answers.frame_no)
    assert all(type(v) is str for v in answers.client + answers.address + answers.name)
    return len(answers)


def flow_table(path: Path):
    return build_flows(decode(read_frames(path)), SERVER_PORT, seed=path.name)


def captures(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".pcap", ".pcapng"))


SAMPLES = captures(ROOT / "samples" / "captures")


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_udp_dns_on_the_samples(path):
    check_udp_dns(flow_table(path))   # (the samples all read: a read error fails the test)


@pytest.mark.parametrize("sub", ["ksc", "public"])
def test_udp_dns_on_the_shared_corpus(sub):
    total = 0
    for path in captures(shared_corpus(sub)):
        try:
            ft = flow_table(path)
        except KsccTrafficError:
            continue
        total += check_udp_dns(ft)
    assert sub != "ksc" or total > 0


def _name(s: str) -> bytes:
    return b"".join(bytes([len(x)]) + x.encode() for x in s.split(".")) + b"\x00"


def _rr(owner: str, rtype: int, rdata: bytes) -> bytes:
    return _name(owner) + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata


NAMES = ["ksc.example.com", "edge.cdn.example.net", "Ksc.Example.com", "a\\b.example", "x.y"]
ADDRS = [bytes([192, 0, 2, i]) for i in (1, 2, 3)] + [bytes(15) + b"\x07"]


@st.composite
def dns_payloads(draw):
    kind = draw(st.sampled_from(["response", "response", "query", "garbage", "short"]))
    ident = draw(st.integers(0, 0xFFFF))
    if kind == "short":
        return draw(st.binary(min_size=1, max_size=13))
    if kind == "garbage":
        return draw(st.binary(min_size=12, max_size=60))
    q = draw(st.sampled_from(NAMES))
    if kind == "query":
        return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + _name(q) + b"\x00\x01\x00\x01"
    answers = []
    owner = q
    for target in draw(st.lists(st.sampled_from(NAMES), max_size=2)):
        answers.append(_rr(owner, dns.TYPE_CNAME, _name(target)))
        owner = target
    for a in draw(st.lists(st.sampled_from(ADDRS), min_size=0, max_size=3)):
        answers.append(_rr(owner, dns.TYPE_AAAA if len(a) == 16 else dns.TYPE_A, a))
    rcode = draw(st.sampled_from([0, 0, 3, 5, 2, 15]))
    msg = (struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, len(answers), 0, 0) + _name(q)
           + b"\x00\x01\x00\x01" + b"".join(answers))
    if draw(st.booleans()):
        msg = msg[:draw(st.integers(12, len(msg)))]     # cut
    return msg


HOSTS = ["10.0.0.1", "10.0.0.2", "10.0.0.53", "2001:db8::1", "2001:db8::53"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(HOSTS), st.integers(1024, 1030), st.booleans(),
                          dns_payloads()), min_size=1, max_size=40))
def test_udp_dns_on_generated_traffic(packets):
    # (client, client port, to the server?, payload); the server is 10.0.0.53 / 2001:db8::53
    records = []
    for k, (client, port, to_server, data) in enumerate(packets):
        server = "2001:db8::53" if ":" in client else "10.0.0.53"
        if client == server:
            continue
        a, b = (client, port), (server, 53)
        records.append(udp(a, b, data, t=1000 + k * 0.001) if to_server
                       else udp(b, a, data, t=1000 + k * 0.001))
    if not records:
        return
    ft = build_flows(decode(read_frames(pcap_bytes(records))), SERVER_PORT, seed="gen")
    check_udp_dns(ft)


# ============================================================================ HTTP

_REQ_LINE = http._REQ_LINE
_MAX_HEADERS = http._MAX_HEADERS


def _text_reference(raw) -> str:
    """dns.text_from_bytes as it was (no plain-ASCII shortcut)."""
    b = bytes(raw)
    if b"\\" in b:
        b = b.replace(b"\\", b"\\\\")
    s = b.decode("utf-8", "backslashreplace")
    ctrl = CONTROL      # controls, bidi controls, invisible format characters
    if ctrl.search(s):
        s = ctrl.sub(lambda m: ("\\x%02x" if ord(m.group()) < 0x80 else "\\u%04x" if ord(m.group()) < 0x10000
                                else "\\U%08x") % ord(m.group()), s)
    return s


def parse_request_reference(data) -> http.HttpRequest | None:
    """http.parse_request as it was: the header lines read one by one as bytes."""
    buf = bytes(data[:http._LIMIT])
    m = _REQ_LINE.match(buf)
    if m is None:
        return None
    req = http.HttpRequest(method=m.group(1).decode("ascii"), target=_text_reference(m.group(2)),
                           version=m.group(3).decode("ascii"))
    pos = m.end()
    n = len(buf)
    host_hdr = None
    while pos < n and len(req.headers) < _MAX_HEADERS:
        eol = buf.find(b"\n", pos)
        if eol < 0:
            break
        line = buf[pos:eol]
        pos = eol + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            req.complete = True
            break
        if line[:1] in (b" ", b"\t"):
            continue
        colon = line.find(b":")
        if colon <= 0:
            continue
        name = _text_reference(line[:colon].strip())
        value = _text_reference(line[colon + 1:].strip(b" \t"))
        req.headers.append((name, value))
        if host_hdr is None and name.lower() == "host":
            host_hdr = value
    auth = http._target_authority(req.target)
    if auth is None and req.method == "CONNECT":
        auth = req.target
    if auth is not None:
        req.host, req.port = http.split_host_port(auth)
    if req.host is None and host_hdr is not None:
        req.host, req.port = http.split_host_port(host_hdr)
    return req


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80) | st.text(max_size=40).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_text_from_bytes_as_before(raw):
    assert dns.text_from_bytes(raw) == _text_reference(raw)
    assert dns.text_from_bytes(bytearray(raw)) == _text_reference(raw)
    assert dns.text_from_bytes(memoryview(raw)) == _text_reference(raw)


HEADER_PIECES = [b"Host", b"host", b"HOST", b" Host ", b"User-Agent", b"X", b"", b"a\\b", b"\xc3\xa9",
                 b"\xff", b"\t", b"\x0b", b"\r", b" ", b"ksc.example.com", b"[2001:db8::1]:8080",
                 b"h:99999", b"user@h:80", b"*/*", b"close", b"\x7f", b"\x00"]


@st.composite
def request_heads(draw):
    method = draw(st.sampled_from([b"GET", b"CONNECT", b"POST", b"get"]))
    target = draw(st.sampled_from([b"/", b"/x?y", b"http://abs.example:81/p", b"h.example:443",
                                   b"/\xc3\xa9\\", b"*"]))
    out = method + b" " + target + b" " + draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]))
    out += draw(st.sampled_from([b"\r\n", b"\n"]))
    for _ in range(draw(st.integers(0, 8))):
        line = draw(st.sampled_from([b"", b" ", b"\t"]))
        line += b"".join(draw(st.lists(st.sampled_from(HEADER_PIECES), max_size=2)))
        line += draw(st.sampled_from([b": ", b":", b"", b" : "]))
        line += b"".join(draw(st.lists(st.sampled_from(HEADER_PIECES), max_size=3)))
        out += line + draw(st.sampled_from([b"\r\n", b"\n", b"\r\n", b"\r\r\n"]))
    out += draw(st.sampled_from([b"\r\n", b"\n", b"", b"\r\nbody\x00\xff", b"\r"]))
    return out[:draw(st.integers(0, len(out)))] if draw(st.booleans()) else out


def assert_same_request(data: bytes) -> None:
    got, ref = http.parse_request(data), parse_request_reference(data)
    assert (got is None) == (ref is None)
    if got is not None:
        assert vars(got) == vars(ref)


@settings(max_examples=1500, deadline=None)
@given(request_heads())
def test_parse_request_as_before(data):
    assert_same_request(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_request_as_before_on_any_bytes_after_a_request_line(rest):
    assert_same_request(b"GET / HTTP/1.1\r\n" + rest)
    assert_same_request(b"GET / HTTP/1.1\n" + rest)


def test_parse_request_limits_as_before():
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"X%d: y\r\n" % i for i in range(300)) + b"Host: late\r\n\r\n"
    assert_same_request(many)
    assert parse_request_reference(many).host is None
    cut = b"GET / HTTP/1.1\r\nHost: a.example\r\nAccept: */*"
    assert_same_request(cut)
    assert http.parse_request(cut).complete is False
    assert_same_request(b"GET / HTTP/1.1\r\n\r\nHost: b\r\n\r\n")
    assert_same_request(b"GET / HTTP/1.1\r\nA: b\n\r\nHost: b\r\n\r\n")
    assert_same_request(b"GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n")
    long = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X: " + b"y" * 70000 + b"\r\n\r\n"
    assert_same_request(long)


# ============================================================================ AnswerStore

class ReferenceAnswerStore:
    """The former store (kept verbatim but for the name), one Python step per answer."""

    def __init__(self) -> None:
        self._recent: list = []
        self._latest_pair: dict = {}
        self._pairs = 0
        self._latest_addr: dict = {}
        self._again: set = set()
        self._cutoff = None

    def __len__(self) -> int:
        return len(self._recent) + self._pairs

    def add(self, new: DnsAnswers, again_ts=None) -> None:
        intern = sys.intern
        seen = self._again
        cutoff = self._cutoff
        for row in zip(new.ts_ns, new.frames(), new.client, new.address, new.name):
            if row in seen:
                continue
            seen.add(row)
            ts, frame, client, address, name = row
            row = (ts, frame, intern(client), intern(address), intern(name))
            if cutoff is not None and ts < cutoff:
                self._fold(row)
            else:
                self._recent.append(row)
        if again_ts is not None and seen:
            again = set(again_ts)
            self._again = {r for r in seen if r[0] in again}

    def advance(self, cutoff) -> None:
        if cutoff is None or (self._cutoff is not None and cutoff <= self._cutoff):
            return
        self._cutoff = cutoff
        old = [r for r in self._recent if r[0] < cutoff]
        if not old:
            return
        self._recent = [r for r in self._recent if r[0] >= cutoff]
        old.sort(key=lambda r: (r[0], r[1]))
        for row in old:
            self._fold(row)

    def _fold(self, row) -> None:
        ts, frame, client, address, name = row
        by_client = self._latest_pair.get(address)
        if by_client is None:
            by_client = self._latest_pair[address] = {}
        have = by_client.get(client)
        if have is None:
            self._pairs += 1
        if have is None or (ts, frame) >= have[:2]:
            by_client[client] = (ts, frame, name)
        have = self._latest_addr.get(address)
        if have is None or (ts, frame) >= have[:2]:
            self._latest_addr[address] = (ts, frame, client, name)

    def select(self, addresses, pairs=None) -> DnsAnswers:
        out = DnsAnswers()
        if pairs is None:
            pairs = [(c, a) for a in addresses for c in self._latest_pair.get(a, ())]
        latest_pair, latest_addr = self._latest_pair, self._latest_addr
        rows = []
        for client, address in set(pairs):
            v = latest_pair.get(address, {}).get(client)
            if v is not None:
                rows.append((v[0], v[1], client, address, v[2]))
        rows.sort(key=lambda r: (r[0], r[1]))
        for a in addresses:
            v = latest_addr.get(a)
            if v is not None:
                rows.append((v[0], v[1], v[2], a, v[3]))
        rows.extend(r for r in self._recent if r[3] in addresses)
        for ts, frame, client, address, name in rows:
            out.ts_ns.append(ts)
            out.frame_no.append(frame)
            out.client.append(client)
            out.address.append(address)
            out.name.append(name)
        return out


def _rows(a: DnsAnswers) -> list[tuple]:
    return list(zip(a.ts_ns, a.frames(), a.client, a.address, a.name))


def assert_same_selection(store: AnswerStore, ref: ReferenceAnswerStore, addresses, pairs) -> None:
    got, want = _rows(store.select(addresses, pairs)), _rows(ref.select(addresses, pairs))
    # the pairs' block: the same rows in time order (the order of ties is the order of a set of
    # strings in the former store, i.e. arbitrary); the rest in the same order
    if pairs is None:
        pairs = [(c, a) for a in addresses for c in ref._latest_pair.get(a, ())]
    k = len(ref.select(set(), pairs))
    assert sorted(got[:k]) == sorted(want[:k])
    assert [r[:2] for r in got[:k]] == sorted(r[:2] for r in got[:k])
    assert got[k:] == want[k:]


CLIENTS = ["c1", "c2", "c3", "c4"]
ADDRESSES = ["a1", "a2", "a3"]


@st.composite
def store_script(draw):
    """Batches of answers in roughly increasing time (each a list of distinct rows), the times
    carried to the next batch, and a cutoff after each."""
    batches = []
    t = 0
    carried: list[tuple] = []
    for _ in range(draw(st.integers(1, 6))):
        fresh = draw(st.lists(st.tuples(st.integers(t - 5, t + 20), st.integers(-1, 3),
                                        st.sampled_from(CLIENTS), st.sampled_from(ADDRESSES),
                                        st.sampled_from(["n1", "n2", "n3"])), max_size=15))
        rows = list(dict.fromkeys(carried + fresh))      # distinct within a batch
        again = draw(st.lists(st.sampled_from([r[0] for r in rows] or [0]), max_size=4))
        carried = [r for r in rows if r[0] in set(again)]
        t += draw(st.integers(0, 15))
        cutoff = draw(st.one_of(st.none(), st.integers(t - 10, t)))
        batches.append((rows, again, cutoff))
    return batches


def _answers(rows) -> DnsAnswers:
    return DnsAnswers([r[0] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
                      [r[4] for r in rows], [r[1] for r in rows])


@settings(max_examples=400, deadline=None)
@given(store_script(), st.lists(st.tuples(st.sampled_from(CLIENTS + ["c9"]),
                                          st.sampled_from(ADDRESSES + ["a9"])), max_size=8))
def test_answer_store_as_before(script, pairs):
    store, ref = AnswerStore(), ReferenceAnswerStore()
    for rows, again, cutoff in script:
        store.add(_answers(rows), again_ts=again)
        ref.add(_answers(rows), again_ts=again)
        assert set(store._again) == set(ref._again)
        store.advance(cutoff)
        ref.advance(cutoff)
        assert len(store) == len(ref)
        addresses = {a for _, a in pairs}
        assert_same_selection(store, ref, addresses, set(pairs))
        assert_same_selection(store, ref, addresses, None)
        assert sorted(_rows(store.answers())) == sorted(
            _rows(ref.select(set(ref._latest_addr) | {r[3] for r in ref._recent})))
        if pairs:
            start = (ref._cutoff or 0) + 1
            f = pd.DataFrame({"ts_ns": np.full(len(pairs), start, np.int64),
                              "orig_h": np.array([c for c, _ in pairs], object),
                              "resp_h": np.array([a for _, a in pairs], object)})
            assert (_dns_names(f, store.select(addresses, set(pairs))).tolist()
                    == _dns_names(f, ref.select(addresses, set(pairs))).tolist())


def test_answer_store_without_again_ts_remembers_everything_as_before():
    store, ref = AnswerStore(), ReferenceAnswerStore()
    batch = [(1, 0, "c", "a", "n"), (2, 1, "c", "b", "m")]
    for s in (store, ref):
        s.add(_answers(batch))
        s.add(_answers(batch + [(3, 2, "c", "a", "o")]))
    assert store._again == ref._again and len(store) == len(ref) == 3


def test_answer_store_repeated_answer_in_a_batch_counts_at_its_last_place():
    # the same answer twice in one batch (DNS over TCP: every message of a stream gets the time
    # and frame of its first segment) with another of the same time in between: the whole list
    # names a flow by the last of them, so must the store (the former store kept the first)
    rows = [(0, -1, "c2", "a2", "n2"), (0, -1, "c1", "a2", "n1"), (0, -1, "c2", "a2", "n2")]
    f = pd.DataFrame({"ts_ns": np.array([0, 0], np.int64), "orig_h": np.array(["c4", "c2"], object),
                      "resp_h": np.array(["a2", "a2"], object)})
    whole = _dns_names(f, _answers(rows)).tolist()
    for cutoff in (None, 1):
        s = AnswerStore()
        s.add(_answers(rows))
        s.advance(cutoff)
        got = s.select({"a2"}, {("c4", "a2"), ("c2", "a2")})
        assert _dns_names(f, got).tolist() == whole == ["n2", "n2"]
    s = AnswerStore()
    s.advance(5)
    s.add(_answers(rows))                       # late: folded straight into the latest
    assert _dns_names(f, s.select({"a2"}, {("c4", "a2")})).tolist() == whole


def test_answer_store_shares_one_string_per_text():
    s = AnswerStore()
    a = _answers([(1, 0, "".join(["c", "1"]), "".join(["a", "1"]), "".join(["n", "1"]))])
    b = _answers([(2, 1, "".join(["c", "1"]), "".join(["a", "1"]), "".join(["n", "1"]))])
    s.add(a)
    s.add(b)
    s.advance(10)
    s.add(_answers([(11, 2, "".join(["c", "1"]), "".join(["a", "1"]), "".join(["n", "1"]))]))
    got = s.select({"a1"}, {("c1", "a1")})
    assert len(got) == 3
    for col in (got.client, got.address, got.name):
        assert all(x is col[0] for x in col)


# ============================================================================ stream kinds, sorting

def _reference_kind(data: bytes) -> str:
    """inspect._kind as it is (one stream at a time)."""
    return insp._kind(data)


STATUS_LIKE = [b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 404 ", b"HTTP/1.1 599\n", b"HTTP/1.1 600 x",
               b"HTTP/1.2 200 x", b"HTTP/1.1 099 x", b"HTTP/1.1 2x0 x", b"HTTP/1.1 200x", b"HTTP/1.1 200\r",
               b"http/1.1 200 x", b"HTTP/1.1  200 x", b"HTTP/1.1 20", b"GET / HTTP/1.1\r\n",
               b"\x16\x03\x03\x00\x10", b"", b"H", b"HTTP/1.1 500\t"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(STATUS_LIKE), st.binary(max_size=20), st.integers(0, 30)),
                max_size=12))
def test_kinds_as_stream_by_stream(streams):
    datas = [(p + t)[:cut] if cut < 30 else p + t for p, t, cut in streams]
    lens = np.array([len(d) for d in datas], np.int64)
    end = np.cumsum(lens)
    buf = np.frombuffer(b"".join(datas) + b"HTTP/1.1 200 OK", np.uint8)   # (bytes after the last)
    got = insp._kinds(buf, end - lens, end).tolist()
    assert got == [_reference_kind(d) for d in datas]
    status = insp._status_line_at(buf, end - lens, end).tolist()
    assert status == [http.looks_like_http_response(d) for d in datas]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=200) | st.lists(st.integers(0, 2**62), max_size=20))
def test_stable_order_is_a_stable_argsort(keys):
    from kscc_traffic.streams import stable_order
    key = np.array(keys, np.int64)
    got = stable_order(key)
    assert got.dtype == np.int64
    assert got.tolist() == np.argsort(key, kind="stable").tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-2**62, 2**62), max_size=60), st.lists(st.integers(-2**62, 2**62), max_size=60),
       st.lists(st.integers(0, 9), max_size=60), st.lists(st.integers(0, 9), max_size=60))
def test_in_sorted_is_isin(values, of, small_values, small_of):
    for v, o in ((values, of), (small_values, small_of), (values + of, of)):
        v, o = np.array(v, np.int64), np.array(o, np.int64)
        got = insp._in_sorted(v, np.sort(o))
        assert got.dtype == bool
        assert got.tolist() == np.isin(v, o).tolist()


def _hints_reference(ft, nflows):
    """inspect._first_segment_hints as it was (always a lexsort)."""
    from kscc_traffic.flows import TCP
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
        d = (key % 2).astype(np.intp)
        f = key // 2
        maybe[d, f] = m
        seen[d, f] = True
    return maybe[0], maybe[1], seen[0], seen[1]


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_first_segment_hints_as_before(path):
    ft = flow_table(path)   # (the samples all read: a read error fails the test)
    n = len(ft.flows)
    for got, want in zip(insp._first_segment_hints(ft, n), _hints_reference(ft, n)):
        assert got.tolist() == want.tolist()
    # and with the packets out of time order (the lexsort path)
    ts = ft.packets.cols["ts_ns"]
    if len(ts) > 2:
        ts[[0, -1]] = ts[[-1, 0]]
        for got, want in zip(insp._first_segment_hints(ft, n), _hints_reference(ft, n)):
            assert got.tolist() == want.tolist()
