"""The capture filter of ``rules --bpf`` and ``live``: IP fragments, IPv6 extension headers and
HTTP proxy ports (breakit6 F8).

libpcap's ``tcp port``/``udp port`` only look at a transport header at fragment offset 0 and
right after the fixed IPv6 header, so the filter also passes every non-first IPv4 fragment and
every IPv6 packet with an extension header. ``--proxy-port N`` adds ``tcp port N``.

The packet tests apply the filter with ``tcpdump -r IN -w OUT FILTER`` (libpcap's BPF, as a
capture would) on crafted pcaps; they skip when tcpdump is absent (.ci/run installs it)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from kscc_traffic.errors import EngineError
from kscc_traffic.rules import bpf_filter, load_rules

scapy = pytest.importorskip("scapy.all")
from scapy.layers.ipsec import AH, ESP  # noqa: E402
from scapy.all import (IP, TCP, UDP, Dot1Q, Ether, IPv6, IPv6ExtHdrDestOpt,  # noqa: E402
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw, fragment,
                       fragment6, rdpcap, wrpcap)

RULE_PARTS = ("tcp port 80 or tcp port 443 or tcp port 1443 or tcp port 13000 or tcp port 13111 or "
              "tcp port 13295 or tcp port 17111 or tcp portrange 23100-23199 or tcp portrange 23700-23799 or "
              "tcp portrange 27200-27299 or tcp portrange 29200-29299 or udp port 15000 or udp port 15001 or "
              "udp port 15111")
TAIL = ("udp port 53 or tcp port 53 or icmp or icmp6 or igmp or ip proto 50 or ip6 proto 50 or udp port 500 or "
        "udp port 4500 or udp port 1194 or tcp port 1194 or udp port 51820 or udp port 1701 or tcp port 1723 or "
        "ip proto 47 or (ip[6:2] & 0x1fff != 0) or ip proto 51 or "
        "(ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 44 or ip6[6] == 51 or ip6[6] == 60)")
CLI = [sys.executable, "-m", "kscc_traffic"]


@pytest.fixture(scope="module")
def rs():
    return load_rules()


# ------------------------------------------------------------------------------------------------
# the text
# ------------------------------------------------------------------------------------------------


def test_filter_text_without_vlan(rs):
    assert bpf_filter(rs, vlan_depth=0) == f"({RULE_PARTS} or {TAIL})"


def test_filter_text_with_proxy_ports(rs):
    # sorted, duplicates dropped, a port a rule covers (443, 23150) adds nothing
    expr = bpf_filter(rs, vlan_depth=0, proxy_ports=[8080, 3128, 8080, 443, 23150])
    assert expr == f"({RULE_PARTS} or tcp port 3128 or tcp port 8080 or {TAIL})"
    inner = expr
    assert bpf_filter(rs, vlan_depth=1, proxy_ports=[3128, 8080]) == f"{inner} or (vlan and {inner})"


def test_filter_without_fragments_is_the_old_text(rs):
    assert bpf_filter(rs, vlan_depth=0, fragments=False, vpn=False) == (
        f"({RULE_PARTS} or udp port 53 or tcp port 53 or icmp or icmp6 or igmp)")


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_bad_proxy_port(rs, port):
    with pytest.raises(ValueError, match=f"proxy port {port} is not in 1-65535"):
        bpf_filter(rs, proxy_ports=[port])


def test_no_protochain(rs):
    # ip6 protochain compiles to a backward jump: the Linux kernel refuses to attach it
    assert "protochain" not in bpf_filter(rs, vlan_depth=2, proxy_ports=[3128])


def test_cli_rules_bpf_proxy_port(rs):
    r = subprocess.run(CLI + ["rules", "--bpf", "--proxy-port", "8080", "--proxy-port", "3128"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == bpf_filter(rs, proxy_ports=[3128, 8080]) + "\n"
    r = subprocess.run(CLI + ["rules", "--bpf", "--no-vlan", "--proxy-port", "3128"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout == f"({RULE_PARTS} or tcp port 3128 or {TAIL})\n"


def test_cli_rules_bpf_bad_proxy_port():
    r = subprocess.run(CLI + ["rules", "--bpf", "--proxy-port", "70000"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--proxy-port" in r.stderr and "Traceback" not in r.stderr


def test_cli_live_proxy_port_with_filter_is_refused():
    r = subprocess.run(CLI + ["live", "-i", "lo", "--filter", "tcp", "--proxy-port", "3128", "--duration", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines == ["Error: --proxy-port adds to the default capture filter; with --filter, put "
                     "'or tcp port N' in the filter instead"]


def test_live_default_filter_takes_the_proxy_ports(rs, monkeypatch):
    """run_live opens its source with the proxy ports in the filter, also when it falls back to
    the filter without the vlan part."""
    from kscc_traffic.live import run as live_run

    seen = []

    class Source:
        engine = "fake"

        def __init__(self, bpf):
            self.bpf = bpf

        def start(self):
            if "vlan" in self.bpf:
                raise EngineError(f"invalid capture filter {self.bpf!r}: vlan on a tun device")
            raise EngineError("stop here")

        def close(self):
            pass

        def stats(self):
            return None, None

    def open_source(engine, iface, bpf):
        seen.append(bpf)
        return Source(bpf)

    monkeypatch.setattr(live_run, "open_source", open_source)
    opts = live_run.LiveOptions(rules=rs, interface="lo", proxy_ports=(3128,))
    with pytest.raises(EngineError, match="stop here"):
        live_run.run_live(opts)
    assert seen == [bpf_filter(rs, proxy_ports=[3128]), bpf_filter(rs, vlan_depth=0, proxy_ports=[3128])]
    assert live_run.default_filter(rs) == bpf_filter(rs)


# ------------------------------------------------------------------------------------------------
# the packets it passes and drops (libpcap, through tcpdump)
# ------------------------------------------------------------------------------------------------

A4, B4, BC4 = "192.0.2.10", "198.51.100.9", "192.0.2.255"
A6, B6 = "2001:db8::10", "2001:db8::9"


def _cases():
    """(tag, frame, passes?) for the default filter with --proxy-port 3128."""
    out = []

    def add(tag, frames, expected, vlan=False):
        for i, f in enumerate(frames):
            eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            out.append((f"{tag}#{i}", eth / Dot1Q(vlan=7) / f if vlan else eth / f, expected))

    big = Raw(b"x" * 4000)
    add("v4 udp 15000 fragments", fragment(IP(src=A4, dst=BC4, id=1) / UDP(sport=15000, dport=15000) / big, 1480), True)
    add("v4 udp 15111 fragments", fragment(IP(src=B4, dst=A4, id=2) / UDP(sport=15111, dport=50000) / big, 1480), True)
    add("vlan v4 udp 15000 fragments",
        fragment(IP(src=A4, dst=BC4, id=3) / UDP(sport=15000, dport=15000) / big, 1480), True, vlan=True)
    add("v6 hbh tcp 23101", [IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / TCP(sport=50000, dport=23101, flags="S")], True)
    add("v6 dstopt tcp 443", [IPv6(src=A6, dst=B6) / IPv6ExtHdrDestOpt() / TCP(sport=50000, dport=443, flags="S")], True)
    add("v6 routing tcp 443", [IPv6(src=A6, dst=B6) / IPv6ExtHdrRouting() / TCP(sport=50000, dport=443, flags="S")], True)
    add("v6 udp 15111 fragments",
        fragment6(IPv6(src=B6, dst=A6) / IPv6ExtHdrFragment(id=9) / UDP(sport=15111, dport=50000) / big, 1280), True)
    add("vlan v6 hbh tcp 23101",
        [IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / TCP(sport=50000, dport=23101, flags="S")], True, vlan=True)
    add("v4 ah tcp 23101", [IP(src=A4, dst=B4) / AH(spi=1, nh=6, payloadlen=4, icv=b"\0" * 12)
                            / TCP(sport=50000, dport=23101, flags="S")], True)
    add("v6 ah tcp 23101", [IPv6(src=A6, dst=B6) / AH(spi=1, nh=6, payloadlen=4, icv=b"\0" * 12)
                            / TCP(sport=50000, dport=23101, flags="S")], True)
    add("v4 esp", [IP(src=A4, dst=B4) / ESP(spi=1, seq=1) / Raw(b"e" * 60)], True)
    add("v6 esp", [IPv6(src=A6, dst=B6) / ESP(spi=1, seq=1) / Raw(b"e" * 60)], True)
    add("v4 udp 4500 (nat-t)", [IP(src=A4, dst=B4) / UDP(sport=4500, dport=4500) / Raw(b"\0" * 60)], True)
    add("v4 udp 51820 (wireguard)", [IP(src=B4, dst=A4) / UDP(sport=51820, dport=43000) / Raw(b"\x04" * 60)], True)
    add("v6 udp 1194 (openvpn)", [IPv6(src=A6, dst=B6) / UDP(sport=43000, dport=1194) / Raw(b"8" * 60)], True)
    add("v4 udp 1701 (l2tp)", [IP(src=A4, dst=B4) / UDP(sport=1701, dport=1701) / Raw(b"\xc8" * 40)], True)
    add("v4 tcp 1723 (pptp)", [IP(src=A4, dst=B4) / TCP(sport=50000, dport=1723, flags="S")], True)
    add("v4 gre (pptp)", [IP(src=A4, dst=B4, proto=47) / Raw(b"\x30\x01\x88\x0b" + b"\0" * 40)], True)
    add("v4 tcp 3128 (proxy)", [IP(src=A4, dst=B4) / TCP(sport=50000, dport=3128, flags="S")], True)
    add("v6 tcp 3128 answer (proxy)", [IPv6(src=B6, dst=A6) / TCP(sport=3128, dport=50000, flags="SA")], True)
    add("v4 tcp 23101", [IP(src=A4, dst=B4) / TCP(sport=50000, dport=23101, flags="S")], True)
    # unrelated traffic stays out
    add("v4 tcp 22", [IP(src=A4, dst=B4) / TCP(sport=50000, dport=22, flags="S")], False)
    add("v6 tcp 22", [IPv6(src=A6, dst=B6) / TCP(sport=50000, dport=22, flags="S")], False)
    add("v4 udp 5353", [IP(src=A4, dst="224.0.0.251") / UDP(sport=5353, dport=5353) / Raw(b"q" * 40)], False)
    add("v6 udp 5353", [IPv6(src=A6, dst="ff02::fb") / UDP(sport=5353, dport=5353) / Raw(b"q" * 40)], False)
    add("v4 tcp 8080 (not a proxy port given)", [IP(src=A4, dst=B4) / TCP(sport=50000, dport=8080, flags="S")], False)
    add("v4 udp 5353 first fragment", fragment(IP(src=A4, dst=B4, id=4) / UDP(sport=5353, dport=5353) / big, 1480)[:1],
        False)
    add("vlan v4 tcp 22", [IP(src=A4, dst=B4) / TCP(sport=50000, dport=22, flags="S")], False, vlan=True)
    return out


def _passed(frames, expr: str, tmp_path) -> list[bool]:
    tcpdump = shutil.which("tcpdump")
    if not tcpdump:
        pytest.skip("tcpdump not installed (apt-get install tcpdump; .ci/run installs it)")
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcap"
    for i, f in enumerate(frames):      # a distinct timestamp per frame names it in the output
        f.time = 1772442000 + i
    wrpcap(str(src), frames)
    r = subprocess.run([tcpdump, "-r", str(src), "-w", str(dst), expr], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    kept = {int(p.time) - 1772442000 for p in rdpcap(str(dst))} if os.path.getsize(dst) > 24 else set()
    return [i in kept for i in range(len(frames))]


def test_filter_passes_fragments_extension_headers_and_proxy(rs, tmp_path):
    cases = _cases()
    got = _passed([f for _, f, _ in cases], bpf_filter(rs, proxy_ports=[3128]), tmp_path)
    wrong = [(tag, want) for (tag, _, want), g in zip(cases, got) if g != want]
    assert not wrong, wrong
    # every fragment of the 4000-byte datagrams is there: 3 IPv4, 4 IPv6
    assert sum(1 for (tag, _, _), g in zip(cases, got) if tag.startswith("v4 udp 15000 fragments") and g) == 3
    assert sum(1 for (tag, _, _), g in zip(cases, got) if tag.startswith("v6 udp 15111 fragments") and g) == 4


def test_old_filter_lost_them(rs, tmp_path):
    """Without the fragment/extension-header parts and the proxy port, the tails, the IPv6
    packets with extension headers and the proxy conversation were dropped."""
    cases = _cases()
    got = _passed([f for _, f, _ in cases], bpf_filter(rs, fragments=False), tmp_path)
    lost = {tag.split("#")[0] for (tag, _, want), g in zip(cases, got) if want and not g}
    assert lost == {"v4 udp 15000 fragments", "v4 udp 15111 fragments", "vlan v4 udp 15000 fragments",
                    "v6 hbh tcp 23101", "v6 dstopt tcp 443", "v6 routing tcp 443", "v6 udp 15111 fragments",
                    "vlan v6 hbh tcp 23101", "v4 tcp 3128 (proxy)", "v6 tcp 3128 answer (proxy)",
                    "v4 ah tcp 23101", "v6 ah tcp 23101"}


def test_without_vpn_the_tunnels_are_lost(rs, tmp_path):
    """Scenario pass s51 #3: without its VPN parts the filter dropped ESP, NAT-T, WireGuard and
    OpenVPN, and with them what the analyzer says of an agent whose connections go into a tunnel."""
    cases = _cases()
    got = _passed([f for _, f, _ in cases], bpf_filter(rs, proxy_ports=[3128], vpn=False), tmp_path)
    lost = {tag.split("#")[0] for (tag, _, want), g in zip(cases, got) if want and not g}
    assert lost == {"v4 esp", "v6 esp", "v4 udp 4500 (nat-t)", "v4 udp 51820 (wireguard)", "v6 udp 1194 (openvpn)",
                    "v4 udp 1701 (l2tp)", "v4 tcp 1723 (pptp)", "v4 gre (pptp)"}


def test_filtered_capture_analyses_as_the_whole(rs, tmp_path):
    """A fragmented UDP 15000 broadcast captured through the filter keeps its 4000 bytes; TCP 22
    is gone."""
    import kscc_traffic

    frames = [Ether() / f for f in fragment(IP(src=A4, dst=BC4, id=5) / UDP(sport=15000, dport=15000)
                                            / Raw(b"y" * 4000), 1480)]
    frames.append(Ether() / IP(src=A4, dst=B4) / TCP(sport=50001, dport=22, flags="S"))
    got = _passed(frames, bpf_filter(rs), tmp_path)
    assert got == [True, True, True, False]
    flows = kscc_traffic.analyze(str(tmp_path / "out.pcap"))
    assert list(flows["resp_p"]) == [15000]
    assert list(flows["orig_bytes"]) == [4000]


@pytest.mark.skipif(os.geteuid() != 0, reason="attaching a filter to a packet socket needs root")
@pytest.mark.parametrize("depth", [0, 1, 2])
def test_kernel_accepts_the_filter(rs, depth):
    """The live capture (scapy engine) attaches the compiled filter to a Linux packet socket: the
    kernel refuses backward jumps (ip6 protochain), so this guards the filter's form."""
    from scapy.arch.linux import L2ListenSocket
    sock = L2ListenSocket(iface="lo", filter=bpf_filter(rs, vlan_depth=depth, proxy_ports=[3128, 8080]))
    sock.close()


# ------------------------------------------------------------------------------------------------
# stacked VLAN tags (QinQ): the default filter nests `vlan` twice (newcomer 16 N4)
# ------------------------------------------------------------------------------------------------

from pathlib import Path  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402

from conftest import shared_corpus  # noqa: E402

LINKTYPES = Path(__file__).resolve().parent.parent / "samples" / "captures" / "linktypes"
TPIDS = (b"\x81\x00", b"\x88\xa8", b"\x91\x00")       # 802.1Q, 802.1ad, the old QinQ 0x9100


def _untagged_copy(src: Path, dst: Path) -> int:
    """Write ``dst``: the classic Ethernet pcap ``src`` with every VLAN tag (any TPID in
    :data:`TPIDS`, at any depth) cut out of every frame, caplen and len shortened by 4 a tag.
    Returns the number of tags removed."""
    data = src.read_bytes()
    end = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">"}[data[:4]]   # µs pcap only
    assert struct.unpack(end + "I", data[20:24])[0] == 1, "not an Ethernet capture"
    out, pos, cut = [data[:24]], 24, 0
    while pos + 16 <= len(data):
        sec, usec, caplen, wirelen = struct.unpack(end + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        while len(frame) >= 18 and frame[12:14] in TPIDS:
            frame = frame[:12] + frame[16:]
            wirelen -= 4
            cut += 1
        out.append(struct.pack(end + "IIII", sec, usec, len(frame), wirelen) + frame)
    dst.write_bytes(b"".join(out))
    return cut


def _count(path: Path, expr: str) -> int:
    """Packets of ``path`` that libpcap's filter ``expr`` passes (``tcpdump -r``)."""
    tcpdump = shutil.which("tcpdump")
    if not tcpdump:
        pytest.skip("tcpdump not installed (apt-get install tcpdump; .ci/run installs it)")
    r = subprocess.run([tcpdump, "-nn", "-r", str(path), expr], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return len(r.stdout.splitlines())


def test_default_filter_is_nested_twice(rs):
    inner = bpf_filter(rs, vlan_depth=0)
    assert bpf_filter(rs) == f"{inner} or (vlan and ({inner} or (vlan and {inner})))"
    assert bpf_filter(rs) == bpf_filter(rs, vlan_depth=2)
    r = subprocess.run(CLI + ["rules", "--bpf"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == bpf_filter(rs, vlan_depth=2) + "\n"
    r = subprocess.run(CLI + ["rules", "--bpf", "--no-vlan"], capture_output=True, text=True, timeout=60)
    assert r.stdout == inner + "\n"


def test_filter_size(rs):
    """Well under the kernel's 4096 instructions. libpcap 1.10.3: 700 instructions offline
    (Ethernet, depth 2, two proxy ports; 490 before the VPN parts), about twice that on a live
    Linux handle (its first `vlan` also tests the tag the kernel stripped into the metadata)."""
    tcpdump = shutil.which("tcpdump")
    if not tcpdump:
        pytest.skip("tcpdump not installed")
    r = subprocess.run([tcpdump, "-d", "-y", "EN10MB", bpf_filter(rs, proxy_ports=[3128, 8080])],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert 0 < len(r.stdout.splitlines()) < 1024


@pytest.mark.parametrize("name,depth1,want", [("agent_ether.pcap", 24, 24), ("agent_vlan.pcap", 24, 24),
                                              ("agent_qinq.pcap", 0, 24)])
def test_bundled_link_samples(rs, tmp_path, name, depth1, want):
    """The same 24-packet exchange untagged, 802.1Q 100, and 802.1ad 200 + 802.1Q 100: the
    filter passes all of it in each, as much as of the untagged copy (the one-level filter
    passed none of the QinQ copy)."""
    src = LINKTYPES / name
    untagged = tmp_path / "untagged.pcap"
    tags = _untagged_copy(src, untagged)
    assert tags == {"agent_ether.pcap": 0, "agent_vlan.pcap": 24, "agent_qinq.pcap": 48}[name]
    assert _count(src, bpf_filter(rs)) == want == _count(untagged, bpf_filter(rs, vlan_depth=0))
    assert _count(src, bpf_filter(rs, vlan_depth=1)) == depth1


def test_corpus_vlan_qinq_http(rs, tmp_path):
    """vlan-qinq_http80.pcap: 42 TCP packets to/from port 80, 14 untagged, 14 single-, 14
    double-tagged (802.1Q twice); all 42 pass (the one-level filter: 28)."""
    src = shared_corpus("public") / "vlan-qinq_http80.pcap"
    untagged = tmp_path / "untagged.pcap"
    assert _untagged_copy(src, untagged) == 14 + 2 * 14
    assert _count(src, "") == 42
    assert _count(untagged, "tcp port 80") == 42
    assert _count(src, bpf_filter(rs)) == 42 == _count(untagged, bpf_filter(rs, vlan_depth=0))
    assert _count(src, bpf_filter(rs, vlan_depth=1)) == 28


@pytest.mark.xfail(strict=True, reason="the filter has no `pppoes` branch at any depth (libpcap allows one "
                                       "`pppoes` per expression and no `vlan` after it): PPPoE is not captured")
def test_corpus_pppoe_over_qinq(rs, tmp_path):
    """pppoe-over-qinq_tls443.pcap: 86 packets of TLS to 443 in PPPoE sessions under 802.1Q
    3704 + 802.1Q 2474. The tags are skipped now, but the PPPoE header is not: 0 pass, as
    of the untagged copy."""
    src = shared_corpus("public") / "pppoe-over-qinq_tls443.pcap"
    untagged = tmp_path / "untagged.pcap"
    assert _untagged_copy(src, untagged) == 2 * 86
    assert _count(src, bpf_filter(rs)) == _count(untagged, bpf_filter(rs, vlan_depth=0))
    assert _count(src, bpf_filter(rs)) == 86


def _tagged(tags: str, payload):
    from scapy.all import Dot1AD
    l2 = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    for t in tags.split("+") if tags else ():
        l2 = l2 / {"q": Dot1Q(vlan=100), "ad": Dot1AD(vlan=200), "9100": Dot1Q(type=0x8100, vlan=300)}[t]
    frame = l2 / payload
    if tags.startswith("9100"):                  # the pre-standard QinQ TPID on the outer tag
        frame[Ether].type = 0x9100
    return frame


TAGS = ("", "q", "ad", "q+q", "ad+q", "9100+q")


def _qinq_cases():
    out = []
    for tags in TAGS:
        out += [(f"{tags or 'untagged'} tcp 443", _tagged(tags, IP(src=A4, dst=B4) / TCP(sport=50000, dport=443, flags="S")), True),
                (f"{tags or 'untagged'} udp 15000 answer",
                 _tagged(tags, IP(src=B4, dst=A4) / UDP(sport=15000, dport=50000)), True),
                (f"{tags or 'untagged'} v6 tcp 23101",
                 _tagged(tags, IPv6(src=A6, dst=B6) / TCP(sport=50000, dport=23101, flags="S")), True),
                (f"{tags or 'untagged'} tcp 22", _tagged(tags, IP(src=A4, dst=B4) / TCP(sport=50000, dport=22, flags="S")),
                 False)]
    # three tags are beyond the filter (documented: two levels)
    out.append(("q+q+q tcp 443", _tagged("q+q+q", IP(src=A4, dst=B4) / TCP(sport=50000, dport=443, flags="S")), False))
    return out


def test_crafted_tag_stacks(rs, tmp_path):
    cases = _qinq_cases()
    got = _passed([f for _, f, _ in cases], bpf_filter(rs), tmp_path)
    wrong = [(tag, want) for (tag, _, want), g in zip(cases, got) if g != want]
    assert not wrong, wrong
    # the one-level filter lost exactly the double-tagged ones
    got1 = _passed([f for _, f, _ in cases], bpf_filter(rs, vlan_depth=1), tmp_path)
    lost = sorted(tag for (tag, _, want), g in zip(cases, got1) if want and not g)
    assert lost == sorted(f"{t} {k}" for t in ("q+q", "ad+q", "9100+q")
                          for k in ("tcp 443", "udp 15000 answer", "v6 tcp 23101"))


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace and a live capture need root")
def test_live_capture_through_the_kernel_keeps_qinq(rs, tmp_path):
    """On a live Linux interface the kernel moves the outer tag into the packet's metadata
    before the filter runs (libpcap's first `vlan` reads it there). Frames sent over a veth pair
    in a throw-away namespace, captured by tcpdump with the default filter: every wanted frame of
    every tag stack arrives, TCP 22 and three tags do not."""
    for tool in ("ip", "tcpdump"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed")
    ns = f"kscc-qinq-{os.getpid()}"
    out = tmp_path / "live.pcap"
    cases = _qinq_cases()
    frames = [f / Raw(b"case%03d" % i) for i, (_, f, _) in enumerate(cases)]   # names the frame
    wrpcap(str(tmp_path / "send.pcap"), frames)
    sender = ("import sys; from scapy.all import rdpcap, sendp; "
              "sendp(rdpcap(sys.argv[1]), iface='va', verbose=False)")

    def run(*cmd):
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    run("ip", "netns", "add", ns)
    try:
        run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        run("ip", "-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "vb")
        run("ip", "-n", ns, "link", "set", "va", "up")
        run("ip", "-n", ns, "link", "set", "vb", "up")
        for _ in range(100):                    # frames sent before the carrier is up are dropped
            states = [subprocess.run(["ip", "-n", ns, "-o", "link", "show", dev], capture_output=True,
                                     text=True, timeout=10).stdout for dev in ("va", "vb")]
            if all("state UP" in st for st in states):
                break
            time.sleep(0.05)
        cap = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", "vb", "-U", "-w", str(out),
                                "-c", str(sum(w for _, _, w in cases)), bpf_filter(rs)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert "listening on" in cap.stderr.readline()
            run("ip", "netns", "exec", ns, sys.executable, "-c", sender, str(tmp_path / "send.pcap"))
            try:
                cap.wait(timeout=10)            # -c: ends at the count wanted; fewer: compared below
            except subprocess.TimeoutExpired:
                pass
        finally:
            if cap.poll() is None:
                cap.kill()
                cap.wait()
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=60)
    got = {int(bytes(p)[-3:]) for p in rdpcap(str(out))}
    assert got == {i for i, (_, _, want) in enumerate(cases) if want}
