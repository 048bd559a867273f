"""Capture files and odd inputs (session 39): a FIFO named on the command line (the error
says to give it on standard input, which reads it), lz4's legacy frame format and xz/bzip2
captures with the tshark engine, Apple PKTAP headers (link types 258 and 149) read as
Wireshark reads them, TZSP in either direction and its other encapsulations. Bytes are built
in the test."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HAVE_TSHARK = shutil.which("tshark") is not None


def _syn_frames(n: int, port0: int = 40000) -> list[bytes]:
    """``n`` Ethernet frames: TCP SYNs 198.51.100.1:port0+i -> 203.0.113.5:13000."""
    out = []
    for i in range(n):
        tcp = struct.pack("!HHIIBBHHH", port0 + i, 13000, 1000 + i, 0, 5 << 4, 0x02, 64240, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i, 0, 64, 6, 0,
                         bytes([198, 51, 100, 1]), bytes([203, 0, 113, 5]))
        out.append(b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp)
    return out


def _pcap_of(frames: list[bytes], linktype: int = 1) -> bytes:
    """A classic little-endian µs pcap of ``frames`` (one a second from 1700000000)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(f), len(f)) + f)
    return b"".join(out)


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *args], capture_output=True, text=True,
                          env=env, timeout=180, **kw)


def _analyze(tmp_path: Path, p: Path | str, *extra: str, out: str = "out.jsonl") -> subprocess.CompletedProcess:
    return _run(["analyze", str(p), "-f", "jsonl", "-o", str(tmp_path / out), *extra])


def _flows(tmp_path: Path, out: str = "out.jsonl") -> list[dict]:
    p = tmp_path / out
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def _warnings(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("Warning:")]


# ------------------------------------------------------------------ a FIFO: standard input
def test_fifo_error_names_standard_input_and_stdin_reads_it(tmp_path):
    fifo = tmp_path / "live cap.fifo"
    os.mkfifo(fifo)
    r = _analyze(tmp_path, fifo)
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "not a regular file" in line
    assert line.endswith(f"or give it on standard input: kscc-traffic analyze - < '{fifo}'"), line
    # what the error says works: the FIFO read as standard input
    data = _pcap_of(_syn_frames(4))

    def feed():
        with open(fifo, "wb") as w:
            w.write(data)
    t = threading.Thread(target=feed)
    t.start()
    with open(fifo, "rb") as rd:
        r = _run(["analyze", "-", "-f", "jsonl", "-o", str(tmp_path / "out.jsonl")], stdin=rd)
    t.join(10)
    assert "Error" not in r.stderr, r.stderr
    flows = _flows(tmp_path)
    assert sorted(f["orig_p"] for f in flows) == [40000, 40001, 40002, 40003]
    assert {f["resp_h"] for f in flows} == {"203.0.113.5"}


def test_fifo_error_with_tshark_engine_does_not_offer_standard_input(tmp_path):
    # (the tshark engine reads files only: no hint it would refuse)
    from kscc_traffic.analyze import _check_source
    from kscc_traffic.errors import CaptureError
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    with pytest.raises(CaptureError, match="not a regular file") as e:
        _check_source(fifo, magic=False)
    assert "standard input" not in str(e.value)
    with pytest.raises(CaptureError, match="not a regular file") as e:
        _check_source(tmp_path / "f", magic=True)
    assert str(e.value).endswith(f"kscc-traffic analyze - < {fifo}")


# ------------------------------------------------------------------ compressed, tshark engine
def _fake_tshark(tmp_path: Path, *, refuse_suffix: str | None = None) -> Path:
    """A stand-in tshark that notes each run in ``runs.txt``; it refuses (as tshark does a
    file it cannot open) every file, or only those whose name ends with ``refuse_suffix``,
    running the real tshark for the others."""
    runs = tmp_path / "runs.txt"
    real = shutil.which("tshark") or "/bin/false"
    script = tmp_path / "tshark"
    cond = "true" if refuse_suffix is None else f'case "$r" in *{refuse_suffix}) true;; *) false;; esac'
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{runs}"\n'
        'r=""; prev=""; for a in "$@"; do [ "$prev" = "-r" ] && r="$a"; prev="$a"; done\n'
        f'if {cond}; then echo "tshark: The file \\"$r\\" isn\'t a capture file in a format TShark '
        'understands." >&2; exit 2; fi\n'
        f'exec "{real}" "$@"\n')
    script.chmod(0o755)
    return script


def _lz4_legacy(data: bytes) -> bytes:
    block = pytest.importorskip("lz4.block")
    comp = block.compress(data, store_size=False)
    return struct.pack("<II", 0x184C2102, len(comp)) + comp


def test_lz4_legacy_refused_by_tshark_engine_itself(tmp_path):
    from kscc_traffic.engines.tshark import read_packets
    from kscc_traffic.errors import TruncatedCapture
    p = tmp_path / "c.pcap.lz4"
    p.write_bytes(_lz4_legacy(_pcap_of(_syn_frames(5))))
    fake = _fake_tshark(tmp_path)
    with pytest.raises(TruncatedCapture) as e:
        read_packets(p, str(fake))
    assert str(e.value) == ("c.pcap.lz4: lz4 legacy frame format (lz4 -l) is not read: convert it with "
                            "'lz4 -d FILE OUT' (then 'lz4 OUT' for the current frame format if wanted); "
                            "no capture data")
    assert not (tmp_path / "runs.txt").exists()      # (tshark was not asked)


@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")
def test_lz4_legacy_same_error_both_engines(tmp_path):
    p = tmp_path / "c.pcap.lz4"
    p.write_bytes(_lz4_legacy(_pcap_of(_syn_frames(3))))
    lines = []
    for engine in ("builtin", "tshark"):
        r = _analyze(tmp_path, p, "--engine", engine)
        assert r.returncode == 2
        got = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("Running as")]
        assert len(got) == 1, r.stderr
        lines.append(got[0])
    assert lines[0] == lines[1]
    assert "convert it with 'lz4 -d FILE OUT'" in lines[0]


def _compress(codec: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import lzma
    if codec == "gzip":
        return gzip.compress(data)
    if codec == "xz":
        return lzma.compress(data)
    if codec == "bzip2":
        return bz2.compress(data)
    if codec == "zstd":
        return pytest.importorskip("zstandard").ZstdCompressor().compress(data)
    return pytest.importorskip("lz4.frame").compress(data)


@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")
@pytest.mark.parametrize("codec", ["gzip", "xz", "bzip2", "zstd", "lz4"])
def test_compressed_capture_tshark_engine_as_builtin(tmp_path, codec):
    # (tshark opens gzip, zstd and lz4 itself; xz and bzip2 it does not: the engine decompresses
    # them first, without a word, as the built-in engine reads them)
    p = tmp_path / f"c.pcap.{codec}"
    p.write_bytes(_compress(codec, _pcap_of(_syn_frames(6))))
    outs = []
    for engine in ("builtin", "tshark"):
        r = _analyze(tmp_path, p, "--engine", engine, out=f"{engine}.jsonl")
        assert "Error" not in r.stderr, r.stderr
        assert _warnings(r.stderr) == [], r.stderr
        outs.append((tmp_path / f"{engine}.jsonl").read_text())
    assert outs[0] == outs[1]
    assert len(outs[0].splitlines()) == 6


@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")
def test_xz_cut_short_tshark_engine_says_where_data_ends(tmp_path):
    from kscc_traffic.engines.tshark import read_packets
    pcap = _pcap_of(_syn_frames(8))
    whole = _compress("xz", pcap)
    p = tmp_path / "cut.pcap.xz"
    p.write_bytes(whole[:len(whole) - 40])
    pk = read_packets(p)
    assert 0 < pk.stats.records < 8
    ends = [w for w in pk.stats.warnings if "capture data ends at offset" in w]
    assert len(ends) == 1 and ends[0].startswith("cut.pcap.xz: xz stream ends before its end marker"), \
        pk.stats.warnings
    assert not any("kscc-traffic-" in w for w in pk.stats.warnings)   # (no temporary file named)
    assert pk.stats.bytes_read == p.stat().st_size


@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")
def test_zstd_with_a_tshark_without_zstd_is_decompressed_first(tmp_path):
    from kscc_traffic.engines.tshark import read_packets
    p = tmp_path / "c.pcap.zst"
    p.write_bytes(_compress("zstd", _pcap_of(_syn_frames(5))))
    fake = _fake_tshark(tmp_path, refuse_suffix=".zst")
    pk = read_packets(p, str(fake))
    assert pk.stats.records == 5
    assert sorted(pk.cols["sport"].tolist()) == [40000, 40001, 40002, 40003, 40004]
    assert pk.stats.warnings == []


# ------------------------------------------------------------------ Apple PKTAP (258, USER2 149)
def _pktap(frame: bytes, hlen: int = 108, type_next: int = 1, dlt: int = 1, room: int | None = None) -> bytes:
    """``frame`` after an Apple ``struct pktap_header`` (little-endian: pth_length ``hlen``,
    pth_type_next, pth_dlt, pth_ifname "en0", the rest zero) of ``room`` bytes (default
    ``hlen``)."""
    return struct.pack("<III24s", hlen, type_next, dlt, b"en0").ljust(hlen if room is None else room, b"\0") + frame


def _pktap_v2(frame: bytes) -> bytes:
    """``frame`` after a kernel ``struct pktap_v2_hdr`` (1-byte pth_length 64, offsets of the
    interface and command names, 16-bit pth_dlt 1, pth_flags with PTH_FLAG_V2_HDR at offset 36)."""
    h = struct.pack("<BBBBBBHHHHHIIIiiI", 64, 0, 0, 40, 56, 0, 1, 14, 0, 6, 6, 2, 0, 0, 100, 100, 0x80000)
    return h.ljust(40, b"\0") + b"en0".ljust(16, b"\0") + b"curl".ljust(8, b"\0") + frame


def _analysed(path: Path, engine: str = "builtin"):
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.rules import load_rules
    r = analyze_file(path, load_rules(), engine=engine)
    return r, next(iter(r.stats.values()))


@pytest.mark.parametrize("linktype", [258, 149])
@pytest.mark.parametrize("hlen, type_next", [(40, 1), (107, 1), (108, 0), (108, 2)])
def test_pktap_header_not_one_gives_no_packet(tmp_path, linktype, hlen, type_next):
    # (Wireshark: a pth_length under 108 is "Header length is too short", a pth_type_next other
    # than 1 has no packet after it: nothing is read past the header; the builtin decoder read
    # the frame after any header of 12 bytes or more, of any type, under link type 258)
    p = tmp_path / "pktap.pcap"
    p.write_bytes(_pcap_of([_pktap(f, hlen, type_next) for f in _syn_frames(4)], linktype))
    r, st = _analysed(p)
    assert len(r.flows) == 0
    assert (st.records, st.ip_packets, st.non_ip) == (4, 0, 4)


@pytest.mark.parametrize("linktype", [258, 149])
def test_pktap_156_byte_header_read(tmp_path, linktype):
    # (recent macOS: pth_flowid, pth_ipproto, pth_tstamp, pth_uuid, pth_euuid after the 108
    # bytes; the frame starts at pth_length)
    p = tmp_path / "pktap.pcap"
    p.write_bytes(_pcap_of([_pktap(f, 156) for f in _syn_frames(3)], linktype))
    r, st = _analysed(p)
    assert sorted(r.flows["orig_p"].tolist()) == [40000, 40001, 40002]
    assert set(r.flows["resp_h"]) == {"203.0.113.5"}
    assert (st.ip_packets, st.non_ip, st.malformed) == (3, 0, 0)


@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")
@pytest.mark.parametrize("linktype", [258, 149])
def test_pktap_engines_agree(tmp_path, linktype):
    # (tshark reads an unconfigured USER2 as PKTAP, as macOS's tcpdump writes it)
    fr = _syn_frames(7)
    frames = [_pktap(fr[0]), _pktap(fr[1], 156), _pktap(fr[2], 200), _pktap_v2(fr[3]),
              _pktap(fr[4], type_next=0), _pktap(fr[5], hlen=60), _pktap(fr[6], dlt=101, hlen=108)[:108]
              + fr[6][14:]]
    p = tmp_path / "mix.pcap"
    p.write_bytes(_pcap_of(frames, linktype))
    (a, sa), (b, sb) = _analysed(p), _analysed(p, "tshark")
    cols = ["uid", "orig_h", "orig_p", "resp_h", "resp_p", "proto", "conn_state", "history"]
    assert a.flows.sort_values("uid")[cols].values.tolist() == b.flows.sort_values("uid")[cols].values.tolist()
    assert sorted(a.flows["orig_p"].tolist()) == [40000, 40001, 40002, 40006]
    assert (sa.ip_packets, sa.non_ip + sa.malformed) == (sb.ip_packets, sb.non_ip + sb.malformed) == (4, 3)


# ------------------------------------------------------------------ TZSP
def _tzsp_frame(inner: bytes, *, encap: int = 1, sport: int = 40001, dport: int = 37008,
                tags: bytes = b"\x00\x01", ttype: int = 0, udp_extra: int = 0) -> bytes:
    """An Ethernet frame (to the collector, VLAN 99) of a UDP datagram 192.0.2.9:sport ->
    192.0.2.10:dport carrying TZSP (version 1, type ``ttype``, encapsulation ``encap``, the
    tagged fields ``tags`` ending with the end tag) and ``inner``; ``udp_extra`` bytes of zeros
    after it (inside the datagram)."""
    from scapy.all import IP, UDP, Dot1Q, Ether, Raw
    payload = struct.pack("!BBH", 1, ttype, encap) + tags + inner + b"\0" * udp_extra
    return bytes(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01") / Dot1Q(vlan=99)
                 / IP(src="192.0.2.9", dst="192.0.2.10") / UDP(sport=sport, dport=dport) / Raw(payload))


def _inner_conversation():
    """The agent's frames the sensor saw: a TCP handshake and a byte of data to 203.0.113.5:13000
    in VLAN 42, and a broadcast UDP datagram to 192.0.2.255:15000."""
    from scapy.all import IP, TCP, UDP, Dot1Q, Ether, Raw
    e = Ether(src="00:00:5e:00:53:0a", dst="00:00:5e:00:53:01") / Dot1Q(vlan=42)
    r = Ether(dst="00:00:5e:00:53:0a", src="00:00:5e:00:53:01") / Dot1Q(vlan=42)
    a, s = "192.0.2.50", "203.0.113.5"
    return [bytes(e / IP(src=a, dst=s) / TCP(sport=50001, dport=13000, flags="S", seq=100)),
            bytes(r / IP(src=s, dst=a) / TCP(sport=13000, dport=50001, flags="SA", seq=900, ack=101)),
            bytes(e / IP(src=a, dst=s) / TCP(sport=50001, dport=13000, flags="A", seq=101, ack=901)),
            bytes(e / IP(src=a, dst=s) / TCP(sport=50001, dport=13000, flags="PA", seq=101, ack=901) / Raw(b"x")),
            bytes(Ether(src="00:00:5e:00:53:0a", dst="ff:ff:ff:ff:ff:ff") / IP(src=a, dst="192.0.2.255")
                  / UDP(sport=15000, dport=15000) / Raw(b"hello"))]


def _write(tmp_path: Path, name: str, frames: list[bytes]) -> Path:
    p = tmp_path / name
    p.write_bytes(_pcap_of(frames))
    return p


def _check_all(path: Path):
    """The frames decoded (fast path = slow path), against the scapy reference decoder (rows
    and link facts), whole = chunked; returns (packets, flows)."""
    from chunkcmp import assert_same
    from decodecheck import decoded
    from kscc_traffic.capture.files import read_frames
    from reference_decoder import decoded_fields, link_fields, link_reference, reference
    pk = decoded(path)
    fr = read_frames(path)
    assert decoded_fields(pk) == reference(fr)
    assert link_fields(pk) == link_reference(fr)
    flows = assert_same(path, [200, 500])
    return pk, flows


def _same_with_tshark(path: Path, flows) -> list[str]:
    """The tshark engine's flows (keys, counts, bytes, verdicts) equal ``flows``; the decode
    warnings of both engines equal (returned)."""
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.rules import load_rules
    rules = load_rules()
    a = analyze_file(path, rules)
    warn = sorted(w for s in a.stats.values() for w in s.warnings if "decode:" in w)
    if not HAVE_TSHARK:
        return warn
    b = analyze_file(path, rules, engine="tshark")
    assert sorted(w for s in b.stats.values() for w in s.warnings if "decode:" in w) == warn
    keys = ["uid", "vlan", "proto", "orig_h", "orig_p", "resp_h", "resp_p", "orig_pkts", "resp_pkts",
            "orig_bytes", "resp_bytes", "orig_ip_bytes", "cast", "conn_state", "purpose", "verdict"]
    x = flows.sort_values("uid")[keys].values.tolist()
    y = b.flows.sort_values("uid")[keys].values.tolist()
    assert x == y
    return warn


@pytest.mark.parametrize("ports", [(40001, 37008), (37008, 40002), (37008, 37008)],
                         ids=["to_37008", "from_37008", "both_37008"])
def test_tzsp_ethernet_either_direction(tmp_path, ports):
    pytest.importorskip("scapy")
    sport, dport = ports
    tags = b"\x0a\x01\xc4\x00\x29\x02\x05\xdc\x3c\x06\x00\x00\x5e\x00\x53\x63\x01"   # signal, orig len, sensor
    frames = [_tzsp_frame(f, sport=sport, dport=dport, tags=tags) for f in _inner_conversation()]
    path = _write(tmp_path, "tzsp.pcap", frames)
    pk, flows = _check_all(path)
    from kscc_traffic.capture._slowpath import vlan_value
    assert pk.cols["vlan"].tolist() == [vlan_value([42])] * 4 + [0]     # the inner frame's, not 99
    assert pk.cols["l2_bcast"].tolist() == [False] * 4 + [True]
    t = flows[flows["proto"] == "tcp"].iloc[0]
    assert (t["orig_h"], t["orig_p"], t["resp_h"], t["resp_p"], t["orig_bytes"], t["history"]) == \
        ("192.0.2.50", 50001, "203.0.113.5", 13000, 1, "ShAD")
    u = flows[flows["proto"] == "udp"].iloc[0]
    assert (u["resp_h"], u["resp_p"], u["cast"]) == ("192.0.2.255", 15000, "broadcast")
    assert _same_with_tshark(path, flows) == [
        "tzsp.pcap: decode: 5 tunnelled packets decoded as their inner packet, outer headers dropped (TZSP 5)"]


def test_tzsp_raw_ip(tmp_path):
    pytest.importorskip("scapy")
    frames = [_tzsp_frame(f[18:] if len(f) > 60 or f[12:14] == b"\x81\x00" else f[14:], encap=7)
              for f in _inner_conversation()[:4]]
    path = _write(tmp_path, "tzsp7.pcap", frames)
    pk, flows = _check_all(path)
    assert pk.cols["vlan"].tolist() == [0] * 4
    assert len(flows) == 1 and flows.iloc[0]["resp_p"] == 13000 and flows.iloc[0]["orig_bytes"] == 1
    assert _same_with_tshark(path, flows) == [
        "tzsp7.pcap: decode: 4 tunnelled packets decoded as their inner packet, outer headers dropped (TZSP 4)"]


def _dot11_data(ip_packet: bytes) -> bytes:
    """An 802.11 data frame (ToDS) carrying ``ip_packet`` after LLC/SNAP."""
    fc = struct.pack("<H", 0x0108)
    return (fc + b"\0\0" + bytes.fromhex("00005e005301 00005e00530a 00005e005301") + b"\x10\x00"
            + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + ip_packet)


def test_tzsp_other_encapsulations_counted_and_kept_as_udp(tmp_path):
    # (802.11 from MikroTik's wireless sniffer, radiotap, PPP: not read by the builtin decoder;
    # Wireshark dissects the 802.11 frame's packet: the tshark engine keeps the UDP datagram too)
    pytest.importorskip("scapy")
    conv = _inner_conversation()
    ips = [f[18:] for f in conv[:4]]
    frames = [_tzsp_frame(_dot11_data(ips[0]), encap=18), _tzsp_frame(_dot11_data(ips[1]), encap=18),
              _tzsp_frame(_dot11_data(ips[2]), encap=18),
              _tzsp_frame(b"\x00\x00\x08\x00\x00\x00\x00\x00" + _dot11_data(ips[3]), encap=126),
              _tzsp_frame(b"\xff\x03\x00\x21" + ips[3], encap=4),
              _tzsp_frame(conv[0])]
    path = _write(tmp_path, "tzsp_wifi.pcap", frames)
    pk, flows = _check_all(path)
    assert sorted(flows["proto"].tolist()) == ["tcp", "udp"]
    u = flows[flows["proto"] == "udp"].iloc[0]
    assert (u["orig_h"], u["resp_h"], u["resp_p"], u["orig_pkts"]) == ("192.0.2.9", "192.0.2.10", 37008, 5)
    warn = _same_with_tshark(path, flows)
    assert warn == [
        "tzsp_wifi.pcap: decode: 1 tunnelled packets decoded as their inner packet, outer headers dropped (TZSP 1)",
        "tzsp_wifi.pcap: decode: 5 TZSP packets carrying frames of a kind not read (802.11 (encapsulation 18) 3, "
        "PPP (encapsulation 4) 1, 802.11 with radiotap headers (encapsulation 126) 1): the packets in them are "
        "missing from the flows, only the UDP datagrams to port 37008 are counted (have the sniffer stream "
        "Ethernet frames: a wired interface, or capture on the host itself)"]


def test_udp_from_port_37008_not_tzsp_stays_udp(tmp_path):
    # a client whose ephemeral port is 37008 (in Linux's 32768-60999): a datagram whose first
    # bytes pass TZSP's header checks but carry no IP packet that fits stays UDP, as do an
    # Ethernet frame whose IP datagram runs past the UDP datagram and another encapsulation;
    # uncounted (only a datagram to 37008 is counted as TZSP)
    pytest.importorskip("scapy")
    conv = _inner_conversation()
    long_ip = bytearray(conv[0])
    struct.pack_into("!H", long_ip, 18 + 2, 200)       # IPv4 total length past the datagram
    frames = [_tzsp_frame(b"\x00\x01\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01", sport=37008, dport=53,
                          tags=b"\x01"),
              _tzsp_frame(bytes(long_ip), sport=37008, dport=40003),
              _tzsp_frame(_dot11_data(conv[0][18:]), encap=18, sport=37008, dport=40003)]
    path = _write(tmp_path, "not_tzsp.pcap", frames)
    pk, flows = _check_all(path)
    assert pk.cols["sport"].tolist() == [37008, 37008, 37008]
    assert sorted(flows["resp_p"].tolist()) == [53, 40003]
    assert _same_with_tshark(path, flows) == []
