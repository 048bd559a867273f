"""Decoder leftovers of session 28: the file's FCS decision held across chunks, snaplen-cut
IP-protocol tunnels (GRE, IP-in-IP, 6in4) keep the outer datagram, and a quoted IPv6 packet's
Home Address option in ICMPv6 errors. Captures are built here with scapy."""
import struct

import pytest

scapy = pytest.importorskip("scapy.all")
from scapy.all import GRE, IP, IPv6, UDP, Ether, Raw  # noqa: E402

from kscc_traffic.capture.decode import decode  # noqa: E402
from kscc_traffic.capture.files import read_frames  # noqa: E402

T = 1_700_000_000


def _pcap(frames: list[bytes], lt: int = 1, snaplen: int = 65535, wire=None) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, lt)
    for i, f in enumerate(frames):
        w = len(f) if wire is None else wire[i]
        out += struct.pack("<IIII", T + i, 0, len(f), w) + f
    return out


# --- 1. the FCS claim decided for the file, not per chunk ------------------------------------

def _no_fcs_frame(i: int) -> bytes:
    # an Ethernet frame without an FCS, 4 bytes of padding after the IP packet (so no frame
    # shows by itself that the packet fills it): only "every frame fails" tells the claim wrong
    p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="192.0.2.1", dst="198.51.100.2") \
        / UDP(sport=10000 + i, dport=5353) / Raw(b"q" * 30)
    return bytes(p) + b"\0\0\0\0"


def _chunked_ports(path, chunk: int):
    import pandas as pd

    from kscc_traffic.chunked import ChunkedAnalysis
    from kscc_traffic.rules import load_rules
    run = ChunkedAnalysis(path, load_rules(), path.name, chunk_bytes=chunk)
    parts = list(run.batches())
    flows = pd.concat(parts, ignore_index=True) if parts else None
    return (sorted(flows["orig_p"].tolist()) if flows is not None else []), run.stats.warnings


def test_fcs_claim_decided_once_for_the_file(tmp_path):
    fcs_lt = 1 | (1 << 26) | (2 << 28)              # pcap header FCS bits: 4 bytes
    frames = [_no_fcs_frame(i) for i in range(6)]
    path = tmp_path / "claim.pcap"
    path.write_bytes(_pcap(frames, fcs_lt))
    whole = decode(read_frames(path.read_bytes(), name="c"))
    assert sorted(whole.cols["sport"].tolist()) == list(range(10000, 10006))
    rec = 16 + len(frames[0])
    for chunk in (1 << 20, 2 * rec + 8, rec + 4):     # whole, ~2 frames a chunk, ~1
        ports, warnings = _chunked_ports(path, chunk)
        assert ports == list(range(10000, 10006)), (chunk, ports, warnings)
        assert [w for w in warnings if "4-byte FCS" in w and "carr" in w], warnings
        assert not [w for w in warnings if "does not match" in w], warnings


def test_fcs_claim_true_keeps_failing_frames_skipped_in_chunks(tmp_path):
    """Frames that do carry the FCS, one damaged: skipped whole and chunked alike."""
    import zlib
    fcs_lt = 1 | (1 << 26) | (2 << 28)
    frames = []
    for i in range(6):
        f = _no_fcs_frame(i)[:-4]
        fcs = struct.pack("<I", zlib.crc32(f))
        frames.append(f + (b"\1\2\3\4" if i == 4 else fcs))
    path = tmp_path / "good.pcap"
    path.write_bytes(_pcap(frames, fcs_lt))
    rec = 16 + len(frames[0])
    for chunk in (1 << 20, 2 * rec + 8):
        ports, warnings = _chunked_ports(path, chunk)
        assert ports == [10000, 10001, 10002, 10003, 10005], (chunk, ports)
        assert [w for w in warnings if "1 with an FCS that does not match" in w], warnings


# --- 3. a quoted IPv6 packet's Home Address option ------------------------------------------

def test_quoted_v6_home_address_is_the_source():
    from scapy.all import HAO, TCP, IPv6ExtHdrDestOpt

    from kscc_traffic.protocols.icmp import quoted_datagram
    inner = IPv6(src="2001:db8:c0::7", dst="2001:db8:5::1") \
        / IPv6ExtHdrDestOpt(options=[HAO(hoa="2001:db8:4::9")]) / TCP(sport=40001, dport=443)
    q = quoted_datagram(bytes(inner), 6)
    assert (q.src, q.dst, q.proto, q.sport, q.dport) == ("2001:db8:4::9", "2001:db8:5::1", 6, 40001, 443)
    # no option: the packet's own source
    plain = IPv6(src="2001:db8:c0::7", dst="2001:db8:5::1") / IPv6ExtHdrDestOpt() / TCP(sport=40001, dport=443)
    assert quoted_datagram(bytes(plain), 6).src == "2001:db8:c0::7"
    # the option cut by the quote's end: not read, the packet's source kept
    cut = bytes(inner)[:40 + 12]
    assert quoted_datagram(cut, 6).src == "2001:db8:c0::7"
    # the decoder keys the same packet by the home address too
    fr = read_frames(_pcap([bytes(Ether() / inner)]), name="hao")
    import ipaddress
    home = int(ipaddress.IPv6Address("2001:db8:4::9"))
    for fast in (True, False):
        p = decode(fr, fast=fast)
        assert p.cols["sport"].tolist() == [40001]
        assert (int(p.cols["src_hi"][0]) << 64 | int(p.cols["src_lo"][0])) == home


# --- 2. IP-protocol tunnels whose inner header the snaplen cut --------------------------------

def _tunnel_frames(kind: str) -> list[bytes]:
    """A TCP handshake (3 packets) from 192.0.2.10 / 2001:db8::10 carried between 198.51.100.1
    and 198.51.100.2 in GRE, IP-in-IP or 6in4."""
    from scapy.all import TCP
    eth = Ether(src="02:00:00:00:aa:01", dst="02:00:00:00:aa:02")
    out = []
    for fl in ("S", "SA", "A"):
        tcp = TCP(sport=50000, dport=13000, flags=fl)
        if kind == "gre":
            p = eth / IP(src="198.51.100.1", dst="198.51.100.2") / GRE() \
                / IP(src="192.0.2.10", dst="203.0.113.10") / tcp
        elif kind == "ipip":
            p = eth / IP(src="198.51.100.1", dst="198.51.100.2", proto=4) \
                / IP(src="192.0.2.10", dst="203.0.113.10") / tcp
        else:
            p = eth / IP(src="198.51.100.1", dst="198.51.100.2", proto=41) \
                / IPv6(src="2001:db8::10", dst="2001:db8::20") / tcp
        out.append(bytes(p))
    return out


def _tshark_conv_ip(path) -> list[tuple[str, str, int]]:
    import subprocess
    out = subprocess.run(["tshark", "-r", str(path), "-q", "-z", "conv,ip"], capture_output=True,
                         text=True, timeout=120).stdout
    rows = []
    for line in out.splitlines():
        if "<->" in line:
            a, _, b, *rest = line.split()
            rows.append((a, b, int(rest[6])))        # the total frames ("0 0 bytes 3 234 bytes 3")
    return rows


@pytest.mark.parametrize("kind,snaplen,proto,inner", [
    ("gre", 46, "gre", False),      # the inner IPv4 header cut at 8 of its 20 bytes
    ("ipip", 42, "4", False),       # the same, IP-in-IP
    ("6in4", 50, "41", False),      # the inner IPv6 header cut at 16 of its 40 bytes
    ("gre", 70, "tcp", True),       # the inner headers whole: the inner packet is the row
    ("6in4", 90, "tcp", True),
])
def test_ip_protocol_tunnel_cut_inside_stays_the_outer_datagram(tmp_path, kind, snaplen, proto, inner):
    import shutil

    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.rules import load_rules
    frames = _tunnel_frames(kind)
    path = tmp_path / f"{kind}{snaplen}.pcap"
    path.write_bytes(_pcap([f[:snaplen] for f in frames], snaplen=snaplen, wire=[len(f) for f in frames]))
    tshark = shutil.which("tshark") is not None
    want = ("192.0.2.10" if kind != "6in4" else "2001:db8::10") if inner else "198.51.100.1"
    for engine in ("builtin", "tshark") if tshark else ("builtin",):
        a = analyze_file(path, load_rules(), engine=engine)
        f = a.flows
        assert len(f) == 1, (engine, f[["proto", "orig_h", "resp_h"]])
        assert (str(f.iloc[0]["proto"]), f.iloc[0]["orig_h"], int(f.iloc[0]["orig_pkts"])) == \
            (proto, want, 3), engine
        warn = [w for st in a.stats.values() for w in st.warnings]
        assert not [w for w in warn if "malformed" in w], (engine, warn)
    if tshark and not inner:
        # tshark's conversations: the outer pair only, all three frames
        assert _tshark_conv_ip(path) == [("198.51.100.1", "198.51.100.2", 3)]
