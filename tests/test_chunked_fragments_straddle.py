"""IP datagrams whose fragments straddle chunk boundaries far apart (break-it 21 F3): the chunked
analysis holds back the frames of the datagrams still incomplete at a chunk's end (those frames
only, wherever they are in the chunk, their frame numbers kept) and decodes them again with the
next chunk, so every datagram is reassembled as in the whole-file decode.

The shape of the finding: large DNS answers in IPv4 or IPv6 fragments, the fragments of
consecutive answers interleaved so that at every point some answer is incomplete, each answer's
fragments more than HOLD_FRAMES (4096) frames apart (other traffic in between). Before the fix
the frames of such a datagram were decoded in two chunks and it was never reassembled:
``blocked/no_answer`` with fragment advice for answers that the whole file has."""
from __future__ import annotations

import struct

import numpy as np
import pytest

pytest.importorskip("scapy")

from scapy.all import DNS, DNSQR, DNSRR, IP, IPv6, IPv6ExtHdrFragment, TCP, UDP, fragment, fragment6, raw  # noqa: E402

from chunkcmp import RULES, assert_same, chunked, whole, write  # noqa: E402
from pcapbuild import eth  # noqa: E402

import kscc_traffic.chunked as chunked_mod  # noqa: E402
from kscc_traffic.capture.decode import decode  # noqa: E402
from kscc_traffic.capture.files import read_frames  # noqa: E402
from kscc_traffic.chunked import HOLD_FRAMES, ChunkedAnalysis  # noqa: E402

NAME = "eu1.ksc.kaspersky.com"
T0 = 1_764_500_000.0
RESOLVER, RESOLVER6 = "192.0.2.53", "2001:db8::53"
SERVER = "203.0.113.10"
# chunk sizes (bytes) of a ~1.5 MB capture: 4 to 15 chunks, each boundary inside some answers
SIZES = (100_000, 262_144, 400_000)


def _filler(n: int):
    """``n`` TCP data segments of one connection 198.18.1.1 -> 203.0.113.10:23101 (TLS-like
    records), raw bytes: one scapy packet, its sequence number patched (the checksum is not
    read)."""
    body = b"\x17\x03\x03\x00\x10" + bytes(16)
    tpl = bytearray(raw(eth(IP(src="198.18.1.1", dst=SERVER) / TCP(sport=50000, dport=23101, flags="PA",
                                                                        seq=1000, ack=5000) / body)))
    at = 14 + 20 + 4
    out = []
    for k in range(n):
        struct.pack_into(">I", tpl, at, 1000 + k * len(body))
        out.append(bytes(tpl))
    return out


def _capture(v6: bool, answers: int = 14, spread: int = 3, per_step: int = 800):
    """``answers`` DNS queries from 8 clients to the resolver, each answer (~2.7 KB) in IP
    fragments; fragment k of answer i is written at step i + k * ``spread``, with ``per_step``
    filler segments after each step, so one answer's fragments are more than HOLD_FRAMES frames
    apart and some answer is incomplete at every point. Returns [(ts, frame)]."""
    res = RESOLVER6 if v6 else RESOLVER
    qt = "AAAA" if v6 else "A"
    frags = []
    queries = []
    for i in range(answers):
        c = f"2001:db8:1::{i % 8 + 1:x}" if v6 else f"198.18.0.{i % 8 + 1}"
        l3 = IPv6 if v6 else IP
        q = DNS(id=i, rd=1, qd=DNSQR(qname=NAME, qtype=qt))
        queries.append(eth(l3(src=c, dst=res) / UDP(sport=40000 + i, dport=53) / q))
        an = DNSRR(rrname=NAME, type=qt, rdata="2001:db8:2::10" if v6 else SERVER)
        ans = DNS(id=i, qr=1, rd=1, ra=1, qd=DNSQR(qname=NAME, qtype=qt), an=an,
                  ar=DNSRR(rrname=NAME, type="TXT", rdata=["k" * 250] * 10))
        if v6:
            big = IPv6(src=res, dst=c) / IPv6ExtHdrFragment(id=1000 + i) / UDP(sport=53, dport=40000 + i) / ans
            fr = fragment6(big, 1280)
        else:
            big = IP(src=res, dst=c, id=1000 + i) / UDP(sport=53, dport=40000 + i) / ans
            fr = fragment(big, fragsize=1000)
        assert len(fr) == 3
        frags.append([eth(f, src="02:00:00:00:00:01", dst="02:00:00:00:00:10") for f in fr])
    steps = answers + 2 * spread
    fill = iter(_filler(steps * per_step))
    recs, t = [], T0
    for s in range(steps):
        if s < answers:
            recs.append((t, queries[s]))
        for k in range(3):
            i = s - k * spread
            if 0 <= i < answers:
                recs.append((t + 0.0001 * (k + 1), frags[i][k]))
        for f in range(per_step):
            recs.append((t + 0.001 + f * 0.000005, next(fill)))
        t += 0.01
    assert 2 * spread * per_step > HOLD_FRAMES
    return recs


@pytest.fixture(scope="module", params=[False, True], ids=["ipv4", "ipv6"])
def capture(request, tmp_path_factory):
    return write(tmp_path_factory.mktemp("straddle"), _capture(request.param),
                 "v6.pcap" if request.param else "v4.pcap")


def test_whole_file_answers_every_query(capture):
    w, a = whole(capture)
    dns = w[w.resp_p == 53]
    assert len(dns) == 14 and len(w) == 15
    assert (dns.reason != "no_answer").all() and (dns.dns_answers != "").all()
    assert (dns.resp_pkts == 1).all() and (dns.resp_bytes > 2600).all()     # one datagram each
    assert not any("could not be reassembled" in x for x in a.warnings)


def test_chunked_equals_whole_with_fragments_far_apart(capture):
    # (before the fix: 14, 12 and 10 of the 14 answers lost at these sizes, their fragments
    # flows of their own)
    w = assert_same(capture, SIZES)
    assert (w[w.resp_p == 53].reason != "no_answer").all()


def test_frame_numbers_of_held_frames_kept(capture, monkeypatch):
    # every packet the chunked analysis decodes has the frame number and timestamp of the
    # whole-file decode (a reassembled datagram: those of its completing fragment)
    seen = []
    real = chunked_mod.analyze_batch

    def spy(batch, *a, carried=None, **kw):
        new = ~carried
        seen.append(np.stack([batch.cols["frame"][new], batch.cols["ts_ns"][new],
                              batch.cols["ip_len"][new].astype(np.int64)], axis=1))
        return real(batch, *a, carried=carried, **kw)

    monkeypatch.setattr(chunked_mod, "analyze_batch", spy)
    run = ChunkedAnalysis(capture, RULES, capture.name, chunk_bytes=SIZES[0])
    list(run.batches())
    got = np.concatenate(seen)
    got = got[np.lexsort(got.T[::-1])]
    c = decode(read_frames(capture)).cols
    want = np.stack([c["frame"], c["ts_ns"], c["ip_len"].astype(np.int64)], axis=1)
    want = want[np.lexsort(want.T[::-1])]
    assert len(got) == len(want)
    assert (got == want).all()


@pytest.mark.parametrize("limit, value", [("HOLD_FRAGMENT_BYTES", 8000), ("HOLD_FRAGMENT_FRAMES", 8)])
def test_too_many_fragments_held_are_given_up_with_a_warning(capture, monkeypatch, limit, value):
    # the frames held at once are bounded (HOLD_FRAGMENT_BYTES, HOLD_FRAGMENT_FRAMES): beyond
    # them the oldest datagrams are given up on, counted and warned about (their answers then
    # missing; here at most 9 frames, under 12 KB, are held at once at chunks of 100,000 bytes)
    monkeypatch.setattr(chunked_mod, limit, value)
    flows, run = chunked(capture, SIZES[0])
    assert run.fragments_not_held > 0
    lost = flows[(flows.resp_p == 53) & (flows.reason == "no_answer")]
    assert 0 < len(lost) < 14
    line = [x for x in run.stats.warnings if "not held for the next chunk" in x]
    assert len(line) == 1 and f"{run.fragments_not_held} IP fragments" in line[0]


def test_lone_fragment_is_given_up_after_the_reassembly_timeout(tmp_path):
    # a fragment whose datagram never completes does not hold the capture's clock (and every
    # flow) back past the reassembly timeout: it is given up on as in the whole file, the flows
    # around it the same, and its flow leaves once idle, long before the capture's end
    big = IP(src=RESOLVER, dst="198.18.0.9", id=77) / UDP(sport=53, dport=40999) / (b"x" * 2500)
    recs = [(T0, eth(fragment(big, fragsize=1000)[0]))]
    for k, f in enumerate(_filler(6000)):
        recs.append((T0 + 0.025 * (k + 1), f))     # 150 s of one TCP connection after it
    p = write(tmp_path, recs)
    w = assert_same(p, (60_000, 150_000))
    assert len(w) == 2
    frag = w[(w.orig_p == 40999) | (w.resp_p == 40999)]
    assert len(frag) == 1 and frag.iloc[0].orig_pkts + frag.iloc[0].resp_pkts == 1
    run = ChunkedAnalysis(p, RULES, p.name, chunk_bytes=60_000)
    out = list(run._leaving())
    at = [k for k, (f, _) in enumerate(out) if ((f.orig_p == 40999) | (f.resp_p == 40999)).any()]
    assert len(at) == 1 and at[0] < len(out) - 1 and out[at[0]][1] is None
    assert getattr(run, "fragments_not_held", 0) == 0


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
def test_decoder_names_each_incomplete_datagram_with_its_deadline(capture, fast):
    # (what the chunked analysis holds: per datagram still incomplete, the latest stamp at which
    # a fragment completes it and its frames; both decoder paths)
    from kscc_traffic.capture._ipfrag import TIMEOUT_NS
    from kscc_traffic.capture.decode import DecodeCounters
    from kscc_traffic.chunked import _take
    fr = read_frames(capture)
    ts = np.asarray(fr.ts_ns, np.int64)
    n = 6000        # (steps 0-6 and some of 7: answers 0 and 1 complete, 2-7 open)
    c = DecodeCounters()
    p = decode(_take(fr, slice(0, n)), fast=fast, counters=c)
    groups = sorted((exp, tuple(f)) for exp, f in c.open_fragments)
    assert len(groups) == 6
    for exp, f in groups:
        assert exp == ts[f[0]] + TIMEOUT_NS and len(f) in (1, 2)
        assert all(f[k] - f[k - 1] > 2000 for k in range(1, len(f)))     # (3 steps apart)
    assert c.open_fragment_frames == [i for _, f in c.open_fragments for i in f]
    # answers 0 and 1 reassembled; the open ones' first fragments given up on (end of frames)
    dns = p.cols["sport"] == 53
    assert int((dns & ~p.cols["unreassembled"]).sum()) == 2
    assert int((dns & p.cols["unreassembled"]).sum()) == 6
