"""A snaplen that cuts packets inside their TCP header (break-it 10, F3).

Wireshark shows a frame cut before the 16th TCP byte (the end of the window field) as "[Packet
size limited during capture]" with the ports but no ``tcp.flags`` nor ``tcp.len``; Zeek skips it
(``truncated_header``). So the builtin decoder gives the ports, flags/seq/ack 0 and
``payload_len`` -1 (unknown); such a packet counts in the flow's packets and IP bytes but is no
history event, no byte and no sequence extent, and a TCP flow of only such packets is not judged
(``unclassified``, :data:`kscc_traffic.classify.HDR_CUT_DETAIL`) instead of ``ok``. From 16 bytes
on (the checksum or the options cut) Wireshark reads flags, sequence numbers and ``tcp.len`` (the
IP payload less the data offset), and so does the decoder: such a capture reads as the uncut one.

The capture: a TLS client whose ClientHello (192 bytes) the server acknowledges and then closes
without sending a byte, TCP timestamps on every packet (header 32 bytes), over IPv4, IPv6, a
VLAN tag or an ERSPAN II mirror; the snaplen cuts every frame 2, 12 or 15 bytes into the TCP
header (flags unknown), or 16, 19 or 24 (inside the checksum, the urgent pointer, the options).
"""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scapy.layers.inet import GRE, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from kscc_traffic.analyze import analyze_file
from kscc_traffic.capture.decode import decode
from kscc_traffic.capture.files import read_frames
from kscc_traffic.chunked import ChunkedAnalysis
from kscc_traffic.classify import HDR_CUT_DETAIL, NO_PORTS_DETAIL
from kscc_traffic.rules import load_rules

RULES = load_rules()
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")

CPORT, SPORT = 50200, 23101
OPTS = [("NOP", None), ("NOP", None), ("Timestamp", (1000, 2000))]    # 12 bytes: header 32
HELLO = b"\x16\x03\x01\x00\xbb\x01\x00\x00\xb7\x03\x03" + bytes(181)   # 192 bytes


def _session(v6: bool) -> list[tuple[bool, object]]:
    """(from_client, IP/TCP packet): SYN, SYN-ACK, ACK, ClientHello, server ACK, server FIN,
    client ACK, client FIN, server ACK (history ShADafF, 192 bytes one way, none back)."""
    c, s = ("2001:db8:1::10", "2001:db8:2::20") if v6 else ("192.0.2.10", "198.51.100.20")
    ip = IPv6 if v6 else IP
    up = lambda **kw: ip(src=c, dst=s) / TCP(sport=CPORT, dport=SPORT, options=OPTS, **kw)  # noqa: E731
    dn = lambda **kw: ip(src=s, dst=c) / TCP(sport=SPORT, dport=CPORT, options=OPTS, **kw)  # noqa: E731
    ci, si = 1000, 50000
    return [(True, up(flags="S", seq=ci)), (False, dn(flags="SA", seq=si, ack=ci + 1)),
            (True, up(flags="A", seq=ci + 1, ack=si + 1)),
            (True, up(flags="PA", seq=ci + 1, ack=si + 1) / HELLO),
            (False, dn(flags="A", seq=si + 1, ack=ci + 193)),
            (False, dn(flags="FA", seq=si + 1, ack=ci + 193)),
            (True, up(flags="A", seq=ci + 193, ack=si + 2)),
            (True, up(flags="FA", seq=ci + 193, ack=si + 2)),
            (False, dn(flags="A", seq=si + 2, ack=ci + 194))]


def _frames(link: str, v6: bool) -> list[tuple[bytes, int]]:
    """(frame bytes, offset of the TCP header in them) per packet of the session."""
    out = []
    for i, (up, pkt) in enumerate(_session(v6)):
        inner = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        if link == "vlan":
            inner = inner / Dot1Q(vlan=7)
        frame = bytes(inner / pkt)
        tcp_at = len(frame) - len(bytes(pkt[TCP]))
        if link == "erspan":                    # ERSPAN type II (GRE 0x88BE) to a collector
            er = struct.pack(">HHI", 0x1000, 0x0001, 0)
            outer = bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:bb")
                          / IP(src="10.9.9.1", dst="10.9.9.2", proto=47)
                          / GRE(proto=0x88BE, seqnum_present=1, seqence_number=i) / (er + frame))
            tcp_at += len(outer) - len(frame)
            frame = outer
        out.append((frame, tcp_at))
    return out


def _write(path: Path, frames: list[tuple[bytes, int]], cut: int | None) -> Path:
    """A pcap of ``frames`` with each frame cut ``cut`` bytes into its TCP header (None: whole);
    the records keep the original length, as a snaplen does."""
    snap = max(at for _, at in frames) + cut if cut is not None else 65535
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snap, 1)]
    for i, (data, at) in enumerate(frames):
        kept = data if cut is None else data[:at + cut]
        out.append(struct.pack("<IIII", 1000 + i // 10, (i % 10) * 10000, len(kept), len(data)))
        out.append(kept)
    path.write_bytes(b"".join(out))
    return path


COLS = ["orig_p", "resp_p", "proto", "orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes",
        "orig_ip_bytes", "resp_ip_bytes", "conn_state", "history", "purpose", "verdict", "reason",
        "detail"]


def _row(path: Path, engine: str = "builtin") -> dict:
    flows = analyze_file(path, RULES, engine=engine).flows
    assert len(flows) == 1, flows[["orig_p", "resp_p", "history"]]
    return {k: flows.at[0, k] for k in COLS}


CASES = [(link, v6) for link in ("ether", "vlan", "erspan") for v6 in (False, True)]
IDS = [f"{link}-{'v6' if v6 else 'v4'}" for link, v6 in CASES]


@pytest.mark.parametrize("link,v6", CASES, ids=IDS)
@pytest.mark.parametrize("cut", [0, 2, 12, 15])
def test_cut_fixed_header_counts_packets_only_and_is_not_judged(tmp_path, link, v6, cut):
    frames = _frames(link, v6)
    whole = _row(_write(tmp_path / "whole.pcap", frames, None))
    assert (whole["history"], whole["orig_bytes"], whole["resp_bytes"], whole["conn_state"]) == \
        ("ShADafF", 192, 0, "SF")
    got = _row(_write(tmp_path / "cut.pcap", frames, cut))
    # ports from the first 4 bytes (none at 2 bytes: -1), packets and IP bytes as uncut
    ports = (CPORT, SPORT) if cut >= 4 else (-1, -1)
    assert (got["orig_p"], got["resp_p"]) in (ports, ports[::-1])
    for k in ("proto", "orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes"):
        assert got[k] == whole[k], k
    assert (got["history"], got["orig_bytes"], got["resp_bytes"], got["conn_state"]) == ("", 0, 0, "OTH")
    if cut >= 4:
        assert got["purpose"] == whole["purpose"] == "agent_connection"
        assert (got["verdict"], got["reason"], got["detail"]) == ("unclassified", "", HDR_CUT_DETAIL)
    else:
        # no port (at 0 bytes: tcpdump -s 54 over IPv6): not judged, and the detail says why
        assert (got["purpose"], got["verdict"], got["reason"], got["detail"]) == \
            ("", "unclassified", "", NO_PORTS_DETAIL.format(proto="TCP"))


@pytest.mark.parametrize("link,v6", CASES, ids=IDS)
@pytest.mark.parametrize("cut", [16, 19, 24])
def test_cut_after_window_or_inside_options_reads_as_uncut(tmp_path, link, v6, cut):
    """16, 19 or 24 of the 32 header bytes: flags, seq, ack and data offset are there (tshark:
    tcp.flags, tcp.len)."""
    frames = _frames(link, v6)
    whole = _row(_write(tmp_path / "whole.pcap", frames, None))
    got = _row(_write(tmp_path / "cut.pcap", frames, cut))
    for k in ("orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes", "orig_ip_bytes", "conn_state",
              "history", "purpose"):
        assert got[k] == whole[k], k
    assert (got["history"], got["orig_bytes"], got["resp_bytes"]) == ("ShADafF", 192, 0)
    assert got["verdict"] != "unclassified"


@needs_tshark
@pytest.mark.parametrize("link,v6", [("ether", False), ("ether", True), ("erspan", False)],
                         ids=["ether-v4", "ether-v6", "erspan-v4"])
@pytest.mark.parametrize("cut", [0, 2, 12, 15, 16, 19, 24, None])
def test_tshark_engine_agrees(tmp_path, link, v6, cut):
    path = _write(tmp_path / "c.pcap", _frames(link, v6), cut)
    assert _row(path, "tshark") == _row(path)


@needs_tshark
def test_tshark_reading_of_a_cut_header(tmp_path):
    """What the rule follows: tshark gives ports but no flags nor length below 16 bytes, and
    both from 16 bytes on (the checksum, or the options, cut)."""
    frames = _frames("ether", False)
    for cut, want in ((12, ("50200", "23101", "", "")), (15, ("50200", "23101", "", "")),
                      (16, ("50200", "23101", "0x0002", "0")),
                      (24, ("50200", "23101", "0x0002", "0"))):
        path = _write(tmp_path / f"c{cut}.pcap", frames, cut)
        out = subprocess.run([TSHARK, "-r", str(path), "-c", "1", "-T", "fields", "-e", "tcp.srcport",
                              "-e", "tcp.dstport", "-e", "tcp.flags", "-e", "tcp.len"],
                             capture_output=True, text=True, check=True).stdout
        assert tuple(out.rstrip("\n").split("\t")) == want, cut


@pytest.mark.parametrize("fast", [True, False])
def test_decoded_columns_of_a_cut_header(tmp_path, fast):
    frames = _frames("ether", False)
    for cut in (2, 12, 15):
        p = decode(read_frames(_write(tmp_path / "c.pcap", frames, cut)), fast=fast)
        c = p.cols
        assert len(p) == 9
        assert (c["payload_len"] == -1).all() and (c["tcp_flags"] == 0).all()
        assert (c["seq"] == 0).all() and (c["ack"] == 0).all() and (c["l4_sum"] == -1).all()
        assert (c["pl_off"] == -1).all() and (c["pl_cap"] == 0).all()
        assert sorted(set(c["sport"].tolist())) == ([-1] if cut < 4 else sorted([CPORT, SPORT]))
        assert c["ip_len"].tolist() == [len(f) - 14 for f, _ in frames]
    for cut in (16, 19, 24):
        p = decode(read_frames(_write(tmp_path / "c.pcap", frames, cut)), fast=fast)
        assert p.cols["payload_len"].tolist() == [0, 0, 0, 192, 0, 0, 0, 0, 0]
        assert p.cols["tcp_flags"].tolist() == [2, 18, 16, 24, 16, 17, 16, 17, 16]
        assert p.cols["seq"].tolist()[:2] == [1000, 50000]
        assert (p.cols["l4_sum"] >= 0).all() == (cut >= 18)


def _pcap(records: list[tuple[bytes, int]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, (kept, wire) in enumerate(records):
        out.append(struct.pack("<IIII", 1000, i * 10000, len(kept), wire))
        out.append(kept)
    return b"".join(out)


@pytest.mark.parametrize("who", ["client", "server"])
def test_one_side_cut(tmp_path, who):
    """Only one side's headers cut (its frames longer: another encapsulation, IP options): the
    cut packets add their packets and IP bytes, no letter, byte or sequence extent; the other
    side's are read. Client cut: the server's SYN-ACK, ACK and FIN only ('haf', judged as a
    flow whose start was not captured: partial); server cut: 'SADF', the ClientHello's 192 bytes,
    the server closed after it (tls_failed, as uncut). Both engines alike."""
    frames, sess = _frames("ether", False), _session(False)
    mine = [up == (who == "client") for up, _ in sess]
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(_pcap([(d[:at + 12] if m else d, len(d)) for (d, at), m in zip(frames, mine)]))
    got = _row(cut)
    want = {"client": ("haf", 0, 0, "SHR", "ok", "partial"),
            "server": ("SADF", 192, 0, "SH", "blocked", "tls_failed")}[who]
    assert (got["history"], got["orig_bytes"], got["resp_bytes"], got["conn_state"], got["verdict"],
            got["reason"]) == want
    assert (got["orig_pkts"], got["resp_pkts"]) == (5, 4)
    assert (got["orig_ip_bytes"], got["resp_ip_bytes"]) == (452, 208)
    if TSHARK:
        assert _row(cut, "tshark") == got


def test_chunked_equals_whole_file(tmp_path):
    # two sessions one after the other (other client ports), so that chunks split flows
    frames = _frames("ether", False)
    global CPORT
    keep = CPORT
    try:
        CPORT = keep + 1
        more = _frames("ether", False)
    finally:
        CPORT = keep
    path = _write(tmp_path / "c2.pcap", frames + more, 12)

    def run(chunk: int) -> pd.DataFrame:
        r = ChunkedAnalysis(path, RULES, path.name, chunk_bytes=chunk)
        return pd.concat(list(r.batches()), ignore_index=True).sort_values(
            ["ts_ns", "uid"], kind="stable").reset_index(drop=True)

    whole, parts = run(1 << 20), run(300)
    pd.testing.assert_frame_equal(parts, whole)
    assert whole["history"].tolist() == ["", ""]
    assert whole["orig_pkts"].tolist() == [5, 5] and whole["orig_bytes"].tolist() == [0, 0]
    assert whole["verdict"].tolist() == ["unclassified", "unclassified"]


@needs_tshark
@pytest.mark.parametrize("cut", [2, 6])
def test_udp_header_cut_keeps_length_from_ip(tmp_path, cut):
    """A UDP header cut: its payload length is the IP length less 8 (both engines)."""
    pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(
        src="192.0.2.10", dst="198.51.100.20") / UDP(sport=40000, dport=15000) / (b"z" * 100)
    data = bytes(pkt)
    kept = data[:34 + cut]
    path = tmp_path / "u.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 34 + cut, 1)
                     + struct.pack("<IIII", 1000, 0, len(kept), len(data)) + kept)
    a = analyze_file(path, RULES).flows
    b = analyze_file(path, RULES, engine="tshark").flows
    assert a["orig_bytes"].tolist() == b["orig_bytes"].tolist() == [100]
    assert a["orig_ip_bytes"].tolist() == [128]
    assert np.array_equal(a["orig_p"].to_numpy(), b["orig_p"].to_numpy())
