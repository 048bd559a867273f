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
from scapy.layers.ipsec import AH  # noqa: E402
from scapy.all import (IP, TCP, UDP, Dot1Q, Ether, IPv6, IPv6ExtHdrDestOpt,  # noqa: E402
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw, fragment,
                       fragment6, rdpcap, wrpcap)

RULE_PARTS = ("tcp port 80 or tcp port 443 or tcp port 1443 or tcp port 13000 or tcp port 13111 or "
              "tcp port 13295 or tcp port 17111 or tcp portrange 23100-23199 or tcp portrange 23700-23799 or "
              "tcp portrange 27200-27299 or tcp portrange 29200-29299 or udp port 15000 or udp port 15001 or "
              "udp port 15111")
TAIL = ("udp port 53 or tcp port 53 or icmp or icmp6 or (ip[6:2] & 0x1fff != 0) or ip proto 51 or "
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
    assert bpf_filter(rs, vlan_depth=0, fragments=False) == (
        f"({RULE_PARTS} or udp port 53 or tcp port 53 or icmp or icmp6)")


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
