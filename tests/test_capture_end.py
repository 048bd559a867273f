"""An unanswered attempt right before the capture's last packet: the verdict stays (Zeek's S0),
the detail says how soon the capture ended, the same whole, in chunks and with tshark."""
from __future__ import annotations

import shutil

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.dns import DNS, DNSQR

from chunkcmp import RULES, assert_same, row, write
from pcapbuild import eth, tcp_session, udp
from kscc_traffic.analyze import analyze_file

AGENT, CLOUD, DNS_SRV = "192.0.2.10", "203.0.113.10", "203.0.113.53"


def _syn(t, sport, dport=23101):
    return (t, eth(IP(src=AGENT, dst=CLOUD) / TCP(sport=sport, dport=dport, flags="S", seq=7)))


def _capture(tmp_path):
    recs = tcp_session((AGENT, 50000), (CLOUD, 23101), t0=1000.0)            # answered
    recs += [_syn(1001.0, 50001), _syn(1002.0, 50001), _syn(1004.0, 50001)]   # blocked: 3 s of silence
    recs += [_syn(1004.5, 50002)]                                             # 0.7 s before the end
    recs += [udp((AGENT, 40000), (DNS_SRV, 53), bytes(DNS(id=9, qd=DNSQR(qname="eu1.ksc.kaspersky.com"))),
                 t=1005.1)]                                                   # 0.1 s before the end
    recs += [_syn(1005.2, 50003)]                                             # the last packet
    return write(tmp_path, [(t, bytes(p)) for t, p in recs])


def _check(flows):
    early = row(flows, orig_p=50001)
    assert (early.verdict, early.reason, early.detail) == ("blocked", "no_answer", "SYN sent 3 times, no answer")
    soon = row(flows, orig_p=50002)
    assert (soon.verdict, soon.reason, soon.conn_state) == ("blocked", "no_answer", "S0")
    assert soon.detail == ("SYN sent 1 time, no answer; the capture ended 0.700 s after its first "
                           "packet, maybe before an answer could come")
    last = row(flows, orig_p=50003)
    assert last.detail.endswith("the capture ended 0.000 s after its first packet, maybe before an answer could come")
    dns = row(flows, orig_p=40000)
    assert (dns.verdict, dns.reason) == ("blocked", "no_answer")
    assert "the capture ended 0.100 s after" in dns.detail
    ok = row(flows, orig_p=50000)
    assert ok.verdict == "ok" and "capture ended" not in ok.detail


def test_detail_says_the_capture_ended_soon_after_the_attempt(tmp_path):
    flows = assert_same(_capture(tmp_path), [300, 600, 1200])
    _check(flows)


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark is not installed")
def test_same_with_the_tshark_engine(tmp_path):
    _check(analyze_file(_capture(tmp_path), RULES, "tshark").flows)


def _live_final(path, end_ns=None):
    """The final table of a live session fed the capture's packets 3 at a time, with a clock
    tick (the packets' own time) after each."""
    import numpy as np
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.capture.frames import Frames
    from kscc_traffic.live.session import LiveSession

    s = LiveSession(RULES, name=path.name)
    fr = read_frames(path)
    for s0 in range(0, len(fr), 3):
        idx = np.arange(s0, min(s0 + 3, len(fr)))
        p = decode(Frames(fr.buf, fr.ts_ns[idx], fr.linktype[idx], fr.offset[idx], fr.caplen[idx],
                          fr.wirelen[idx]))
        p.cols["frame"] = idx[p.cols["frame"]]
        s.ingest(p)
        s.tick(int(fr.ts_ns[idx[-1]]))
    return s.final(end_ns)


def test_same_at_the_end_of_a_live_session(tmp_path):
    path = _capture(tmp_path)
    _check(_live_final(path))


def test_live_session_stopped_later_gives_no_note(tmp_path):
    """Stopped (Ctrl-C, --duration) 10 s after the last packet: nothing ended early."""
    flows = _live_final(_capture(tmp_path), end_ns=int(1015.2e9))
    assert row(flows, orig_p=50002).detail == "SYN sent 1 time, no answer"
    assert "capture ended" not in " ".join(flows["detail"])


def _arp(t):
    from scapy.layers.l2 import ARP, Ether
    return (t, Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=AGENT, pdst="192.0.2.1"))


@pytest.mark.parametrize("engine", ["builtin", "tshark"])
def test_a_frame_that_is_not_ip_shows_the_capture_ran_on(tmp_path, engine):
    """An ARP request 10 s after the last SYN shows the capture went on: the unanswered SYNs
    get no "the capture ended … maybe before an answer" note; an ARP two days later (a wrong
    clock, not believed) leaves the notes as without it (break-it 13)."""
    if engine == "tshark" and not shutil.which("tshark"):
        pytest.skip("tshark is not installed")
    recs = [_syn(1001.0, 50001), _syn(1004.5, 50002), _syn(1005.2, 50003)]
    later = write(tmp_path, [(t, bytes(p)) for t, p in recs + [_arp(1015.2)]], "arp.pcap")
    flows = analyze_file(later, RULES, engine).flows if engine == "tshark" else assert_same(later, [100, 200])
    assert [row(flows, orig_p=p).detail for p in (50002, 50003)] == ["SYN sent 1 time, no answer"] * 2
    wrong = write(tmp_path, [(t, bytes(p)) for t, p in recs + [_arp(1005.2 + 2 * 86400)]], "arp_late.pcap")
    flows = analyze_file(wrong, RULES, engine).flows
    assert "the capture ended 0.700 s after its first packet" in row(flows, orig_p=50002).detail
