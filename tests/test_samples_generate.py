"""samples/generate.py: the captures it writes, their labels, and its determinism.

The generator runs twice (in subprocesses, into temporary folders); everything else reads what it
wrote with scapy and cryptography, independently of the generator's own code.
"""
from __future__ import annotations

import ast
import json
import re
import struct
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

scapy_all = pytest.importorskip("scapy.all")
from cryptography import x509  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from scapy.layers.inet import IP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.utils import PcapNgReader, RawPcapNgReader, RawPcapReader, rdpcap  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
from conftest import SHARED  # noqa: E402
GENERATOR = ROOT / "samples" / "generate.py"
COMMITTED = ROOT / "samples" / "captures"
ACCEPTANCE = SHARED / "tools" / "acceptance.py"

LABEL_FIELDS = ["client_ip", "client_port", "server_ip", "server_port", "transport",
                "expected_purpose", "expected_verdict", "sni_or_host", "notes", "expected_reason"]
PURPOSES = {"agent_connection", "mobile_connection", "activation", "klsctunnel", "discovery_https", "ksn",
            "cert_check_http", "gateway_udp", "agent_broadcast_udp", "dp_multicast_udp",
            "dp_agent_connection", "dp_ksn_proxy_tcp", "dp_push", "dp_ksn_proxy_udp",
            "dp_ksn_proxy_https", "dns", ""}
STANDARD_VERDICTS = {"ok", "ok_partial_capture", "blocked_no_answer", "blocked_rejected_rst", "blocked_icmp",
                     "unexpected_host", "unexpected_protocol", "tls_intercepted"}
EXTRA_VERDICTS = {"tls_failed", "unexpected_undocumented_port", "unexpected_wrong_direction", "unclassified"}


# ---------------------------------------------------------------------------------------------
# Running the generator
# ---------------------------------------------------------------------------------------------

def run_generator(out: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(GENERATOR), "--out", str(out), "-q", *extra],
                          capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("first") / "captures"
    run_generator(out)
    return out


@pytest.fixture(scope="module")
def gen_again(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("second") / "captures"
    run_generator(out)
    return out


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def manifest_env(root: Path) -> dict[str, str]:
    env = {}
    for line in (root / "MANIFEST.tsv").read_text().splitlines():
        if line.startswith("# ") and "\t" in line:
            key, value = line[2:].split("\t", 1)
            env[key] = value
    return env


def captures(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".pcap", ".pcapng"))


def labels_of(capture: Path) -> tuple[list[dict], list[dict]]:
    std = capture.with_name(capture.name + ".labels.json")
    extra = capture.with_name(capture.name + ".extra-labels.json")
    return (json.loads(std.read_text()) if std.exists() else [],
            json.loads(extra.read_text()) if extra.exists() else [])


def all_labels(capture: Path) -> list[dict]:
    std, extra = labels_of(capture)
    return std + extra


# ---------------------------------------------------------------------------------------------
# Reading captures (scapy), flows and streams
# ---------------------------------------------------------------------------------------------

class Pkt:
    def __init__(self, index: int, ts: float, frame) -> None:
        self.index, self.ts, self.frame = index, ts, frame
        ip = frame.getlayer(IP) or frame.getlayer(IPv6)
        assert ip is not None, f"packet {index} has no IP layer: {frame.summary()}"
        self.ip = ip
        self.v6 = isinstance(ip, IPv6)
        self.src, self.dst = ip.src, ip.dst
        self.proto = ip.nh if self.v6 else ip.proto
        l4 = ip.payload
        self.l4 = l4
        self.sport = self.dport = None
        self.flags = ""
        self.seq = self.ack = 0
        self.payload = b""
        if self.proto == 6:
            self.sport, self.dport = l4.sport, l4.dport
            self.flags = str(l4.flags)
            self.seq, self.ack = l4.seq, l4.ack
            self.payload = bytes(l4.payload)
        elif self.proto == 17:
            self.sport, self.dport = l4.sport, l4.dport
            self.payload = bytes(l4.payload)

    @property
    def transport(self) -> str | None:
        return {6: "tcp", 17: "udp"}.get(self.proto)


_CACHE: dict[Path, list[Pkt]] = {}


def read(path: Path) -> list[Pkt]:
    if path not in _CACHE:
        _CACHE[path] = [Pkt(i, float(f.time), f) for i, f in enumerate(rdpcap(str(path)))]
    return _CACHE[path]


def flow_key(p: Pkt) -> tuple:
    a, b = (p.src, p.sport), (p.dst, p.dport)
    return (p.transport,) + tuple(sorted([a, b]))


def flows(pkts: list[Pkt]) -> dict[tuple, list[Pkt]]:
    out: dict[tuple, list[Pkt]] = defaultdict(list)
    for p in pkts:
        if p.transport:
            out[flow_key(p)].append(p)
    return out


def label_key(lab: dict) -> tuple:
    a = (lab["client_ip"], lab["client_port"])
    b = (lab["server_ip"], lab["server_port"])
    return (lab["transport"],) + tuple(sorted([a, b]))


def packets_of(path: Path, lab: dict) -> list[Pkt]:
    return flows(read(path))[label_key(lab)]


def from_client(p: Pkt, lab: dict) -> bool:
    return p.src == lab["client_ip"] and p.sport == lab["client_port"]


def stream(pkts: list[Pkt], lab: dict, client: bool) -> bytes:
    """Reassembled payload of one direction (unique sequence numbers, in order)."""
    segs = {}
    for p in pkts:
        if from_client(p, lab) == client and p.payload:
            segs.setdefault(p.seq, p.payload)
    return b"".join(segs[s] for s in sorted(segs, key=lambda s: (s - min(segs)) % 2**32))


def tls_records(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i + 5 <= len(data):
        ctype, length = data[i], struct.unpack("!H", data[i + 3:i + 5])[0]
        out.append((ctype, data[i + 5:i + 5 + length]))
        i += 5 + length
    assert i == len(data), "stream does not end on a TLS record boundary"
    return out


def sni_of(client_hello_stream: bytes) -> bytes | None:
    ctype, rec = tls_records(client_hello_stream)[0]
    assert ctype == 22 and rec[0] == 1, "first client record is not a ClientHello"
    body = rec[4:]
    pos = 2 + 32
    pos += 1 + body[pos]
    pos += 2 + int.from_bytes(body[pos:pos + 2], "big")
    pos += 1 + body[pos]
    end = pos + 2 + int.from_bytes(body[pos:pos + 2], "big")
    pos += 2
    while pos < end:
        etype, elen = struct.unpack("!HH", body[pos:pos + 4])
        if etype == 0:
            data = body[pos + 4:pos + 4 + elen]
            assert data[2] == 0
            return data[5:5 + int.from_bytes(data[3:5], "big")]
        pos += 4 + elen
    return None


def certificates_in(server_stream: bytes) -> list[x509.Certificate]:
    """TLS 1.2 Certificate message (plaintext) -> certificates."""
    records = tls_records_prefix(server_stream)
    body = b"".join(rec for ctype, rec in records if ctype == 22)
    i = 0
    while i + 4 <= len(body):
        mtype, length = body[i], int.from_bytes(body[i + 1:i + 4], "big")
        msg = body[i + 4:i + 4 + length]
        if mtype == 11:
            certs, j = [], 3
            while j < len(msg):
                clen = int.from_bytes(msg[j:j + 3], "big")
                certs.append(x509.load_der_x509_certificate(msg[j + 3:j + 3 + clen]))
                j += 3 + clen
            return certs
        if mtype == 14:  # ServerHelloDone: everything after is encrypted
            break
        i += 4 + length
    return []


def tls_records_prefix(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i + 5 <= len(data):
        ctype, length = data[i], struct.unpack("!H", data[i + 3:i + 5])[0]
        out.append((ctype, data[i + 5:i + 5 + length]))
        i += 5 + length
        if ctype == 20:  # ChangeCipherSpec: later handshake records are encrypted
            break
    return out


def name_text(raw: bytes) -> str:
    """The project's name text for names from packets (kscc_traffic/protocols/dns.py): UTF-8 kept,
    backslash doubled, control characters and non-UTF-8 bytes as \\xNN."""
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append("\\\\" if ch == "\\" else ch)
    return "".join(out)


def http_host(request: bytes) -> bytes | None:
    for line in request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        if line.lower().startswith(b"host:"):
            return line[5:].strip(b" ")
    return None


# ---------------------------------------------------------------------------------------------
# The file set, labels, determinism
# ---------------------------------------------------------------------------------------------

def test_generator_writes_the_committed_file_set(gen):
    assert COMMITTED.is_dir(), "samples/captures/ missing: run python samples/generate.py"
    assert files(gen) == files(COMMITTED)
    expected = {"baseline_agent.pcap", "baseline_dp.pcapng", "blocked_agent.pcap", "unexpected_agent.pcap",
                "unexpected_port_direction_agent.pcap", "intercepted_tls12.pcap", "ipv6_agent.pcap",
                "midstream_agent.pcap", "hostile_names.pcap"} | {
        f"linktypes/agent_{v}.pcap" for v in ("ether", "vlan", "qinq", "sll2", "raw", "null")}
    assert {str(p.relative_to(gen)) for p in captures(gen)} == expected
    for cap in captures(gen):
        std, extra = labels_of(cap)
        assert std or extra, f"{cap.name} has no labels"


def test_committed_labels_are_up_to_date(gen):
    for rel in sorted(files(gen)):
        if rel.endswith(".json"):
            assert (gen / rel).read_text() == (COMMITTED / rel).read_text(), f"{rel} differs: regenerate samples"


def test_committed_captures_are_up_to_date_on_the_same_versions(gen):
    if manifest_env(gen) != manifest_env(COMMITTED):
        pytest.skip(f"different software versions than the committed samples: {manifest_env(COMMITTED)}")
    for rel in sorted(files(gen)):
        assert (gen / rel).read_bytes() == (COMMITTED / rel).read_bytes(), f"{rel} differs: regenerate samples"


def test_two_runs_are_byte_identical(gen, gen_again):
    again = gen_again
    assert files(gen) == files(again)
    tls_deterministic = manifest_env(gen).get("tls_deterministic") == "yes"
    for rel in sorted(files(gen)):
        a, b = (gen / rel).read_bytes(), (again / rel).read_bytes()
        if rel.endswith(".json") or tls_deterministic:
            assert a == b, rel
        elif rel.endswith((".pcap", ".pcapng")):  # TLS contents may differ, never sizes
            assert [len(p.frame) for p in read(gen / rel)] == [len(p.frame) for p in read(again / rel)], rel


def test_update_expected_writes_golden_csv_or_skips(tmp_path):
    proc = run_generator(tmp_path / "captures", "--update-expected", "--expected-dir", str(tmp_path / "expected"))
    if "skipped" in proc.stdout:
        assert not (tmp_path / "expected").exists()
        return
    written = {str(p.relative_to(tmp_path / "expected")) for p in (tmp_path / "expected").rglob("*.flows.csv")}
    assert written == {f"{rel}.flows.csv" for rel in
                       (str(p.relative_to(tmp_path / "captures")) for p in captures(tmp_path / "captures"))}


def test_label_format_and_vocabulary(gen):
    for cap in captures(gen):
        std, extra = labels_of(cap)
        for lab in std + extra:
            assert list(lab) == LABEL_FIELDS, f"{cap.name}: fields {list(lab)}"
            assert lab["transport"] in ("tcp", "udp")
            assert lab["expected_purpose"] in PURPOSES, lab
            assert isinstance(lab["client_port"], int) and isinstance(lab["server_port"], int)
            assert lab["sni_or_host"] is None or isinstance(lab["sni_or_host"], str)
        for lab in std:
            assert lab["expected_verdict"] in STANDARD_VERDICTS, lab
        for lab in extra:
            assert lab["expected_verdict"] in STANDARD_VERDICTS | EXTRA_VERDICTS, lab
        assert not any(lab["expected_verdict"] in EXTRA_VERDICTS for lab in std)


def test_shared_acceptance_tool_knows_every_standard_label():
    if not ACCEPTANCE.exists():
        pytest.skip(f"{ACCEPTANCE} not present (the shared folder lives beside the project checkout, ../shared, "
                    "or where KSCC_SHARED=/path/to/shared says)")
    tree = ast.parse(ACCEPTANCE.read_text())
    tables = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("VERDICTS", "PURPOSE"):
            tables[node.targets[0].id] = {k.value for k in node.value.keys}
    assert tables["VERDICTS"] == STANDARD_VERDICTS
    for cap in captures(COMMITTED):
        for lab in labels_of(cap)[0]:
            assert lab["expected_verdict"] in tables["VERDICTS"]


# ---------------------------------------------------------------------------------------------
# Every flow labelled, every label has its flow; TCP well formed
# ---------------------------------------------------------------------------------------------

def test_every_flow_is_labelled_and_every_label_exists(gen):
    for cap in captures(gen):
        labs = all_labels(cap)
        keys = [label_key(lab) for lab in labs]
        assert len(keys) == len(set(keys)), f"{cap.name}: duplicate labels"
        assert set(flows(read(cap))) == set(keys), cap.name


def test_label_orientation_matches_who_opened_the_flow(gen):
    for cap in captures(gen):
        for lab in all_labels(cap):
            pkts = packets_of(cap, lab)
            syn = [p for p in pkts if p.flags == "S"]
            synack = [p for p in pkts if p.flags == "SA"]
            if syn:
                assert from_client(syn[0], lab), (cap.name, lab)
            elif synack:
                assert not from_client(synack[0], lab), (cap.name, lab)
            elif lab["transport"] == "udp":
                assert from_client(pkts[0], lab), (cap.name, lab)
            else:
                assert lab["expected_verdict"] == "ok_partial_capture", (cap.name, lab)


def test_tcp_sequence_numbers_and_segment_sizes(gen):
    for cap in captures(gen):
        for key, pkts in flows(read(cap)).items():
            if key[0] != "tcp":
                continue
            nxt: dict[tuple, int] = {}
            sent: dict[tuple, int] = {}
            for p in pkts:
                side = (p.src, p.sport)
                peer = (p.dst, p.dport)
                mss = 1440 if p.v6 else 1460
                assert len(p.payload) <= mss, (cap.name, p.index)
                if isinstance(p.frame, Ether):
                    assert len(p.frame) <= 1514 + 8, (cap.name, p.index)
                if "R" in p.flags and p.flags == "RA" and side not in nxt:
                    assert p.seq == 0 and p.ack == (nxt[peer]) % 2**32, (cap.name, p.index)
                    continue
                if side in nxt and "S" in p.flags and "A" not in p.flags:
                    assert p.seq == (nxt[side] - 1) % 2**32, "SYN retransmission changed its ISN"
                    continue
                if side in nxt:
                    assert p.seq == nxt[side], (cap.name, p.index, "sequence gap or overlap")
                grow = len(p.payload) + ("S" in p.flags) + ("F" in p.flags)
                nxt[side] = (p.seq + grow) % 2**32
                sent[side] = nxt[side]
                if "A" in p.flags and peer in sent:
                    assert p.ack == sent[peer], (cap.name, p.index, "ACK of unseen or stale data")


def test_timestamps_fixed_and_in_order(gen):
    for cap in captures(gen):
        times = [p.ts for p in read(cap)]
        assert times == sorted(times), cap.name
        assert 1772441000 < times[0] < 1772443000, cap.name  # 2026-03-02 around 09:00 UTC


# ---------------------------------------------------------------------------------------------
# Verdict by verdict: the packets show what the label says
# ---------------------------------------------------------------------------------------------

def by_verdict(root: Path, verdict: str):
    for cap in captures(root):
        for lab in all_labels(cap):
            if lab["expected_verdict"] == verdict:
                yield cap, lab


def test_no_answer_is_syn_retransmissions_only(gen):
    seen = 0
    for cap, lab in by_verdict(gen, "blocked_no_answer"):
        pkts = packets_of(cap, lab)
        assert all(from_client(p, lab) for p in pkts), (cap.name, lab)
        if lab["transport"] == "udp":  # a DNS query repeated, never answered
            assert len(pkts) >= 2 and len({p.payload for p in pkts}) == 1
            continue
        seen += 1
        assert all(p.flags == "S" for p in pkts)
        assert 3 <= len(pkts) <= 4 and len({p.seq for p in pkts}) == 1
        gaps = [b.ts - a.ts for a, b in zip(pkts, pkts[1:])]
        assert all(later > 1.5 * earlier for earlier, later in zip(gaps, gaps[1:])), gaps
    assert seen >= 2


def test_rejected_is_syn_then_rst_ack(gen):
    seen = 0
    for cap, lab in by_verdict(gen, "blocked_rejected_rst"):
        pkts = packets_of(cap, lab)
        assert [p.flags for p in pkts] == ["S", "RA"], (cap.name, lab)
        assert pkts[1].ack == (pkts[0].seq + 1) % 2**32
        seen += 1
    assert seen == 2


def test_icmp_errors_quote_the_flow(gen):
    seen = set()
    for cap, lab in by_verdict(gen, "blocked_icmp"):
        errors = []
        for p in read(cap):
            if p.proto in (1, 58):
                quoted = bytes(p.l4.payload)
                inner = IPv6(quoted) if p.v6 else IP(quoted)
                l4 = inner.payload
                if (inner.src, inner.dst, l4.sport, l4.dport) == (
                        lab["client_ip"], lab["server_ip"], lab["client_port"], lab["server_port"]):
                    errors.append((p.l4.type, p.l4.code, p.dst))
        assert len(errors) == 1, (cap.name, lab)
        icmp_type, code, dst = errors[0]
        assert dst == lab["client_ip"]
        seen.add((icmp_type, code))
        if lab["transport"] == "tcp":
            assert [p.flags for p in packets_of(cap, lab)] == ["S"]
    assert seen == {(3, 13), (3, 3), (1, 1)}


def test_names_in_packets_match_the_labels(gen):
    checked = 0
    for cap in captures(gen):
        for lab in all_labels(cap):
            pkts = packets_of(cap, lab)
            if lab["expected_purpose"] == "dns":
                query = pkts[0].frame.getlayer("DNS")
                qname = query.qd[0].qname if hasattr(query.qd, "__getitem__") else query.qd.qname
                qname = qname.rstrip(b".")
                assert name_text(qname) == lab["sni_or_host"], (cap.name, lab)
                checked += 1
                continue
            if lab["transport"] != "tcp":
                continue
            client = stream(pkts, lab, client=True)
            if not client:
                assert lab["sni_or_host"] is None
                continue
            if client[0] == 22:
                name = sni_of(client)
            elif client[:4] in (b"GET ", b"POST"):
                name = http_host(client)
            else:
                name = None
            want = lab["sni_or_host"]
            if name is not None and want is not None:
                if client[0] != 22:
                    name = re.sub(rb":[0-9]+$", b"", name)  # Host: 192.0.2.20:13000
                assert name_text(name) == want, (cap.name, lab, name)
                checked += 1
            else:
                assert want is None or lab["expected_verdict"] == "ok_partial_capture", (cap.name, lab)
    assert checked > 40


def test_dp_connections_carry_no_sni(gen):
    for cap in captures(gen):
        for lab in all_labels(cap):
            if lab["expected_purpose"] in ("dp_agent_connection", "dp_push", "dp_ksn_proxy_https") \
                    and lab["expected_verdict"] == "ok":
                assert sni_of(stream(packets_of(cap, lab), lab, client=True)) is None


def test_activation_certificate_is_visible(gen):
    cap = gen / "baseline_agent.pcap"
    lab = next(lab for lab in all_labels(cap) if lab["expected_purpose"] == "activation")
    certs = certificates_in(stream(packets_of(cap, lab), lab, client=False))
    san = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "*.ksc.kaspersky.com" in san.get_values_for_type(x509.DNSName)
    assert certs[1].subject == certs[0].issuer


def test_intercepted_certificate_is_for_the_proxy(gen):
    cap = gen / "intercepted_tls12.pcap"
    labs = [lab for lab in all_labels(cap) if lab["transport"] == "tcp"]
    assert [lab["expected_verdict"] for lab in labs] == ["tls_intercepted", "tls_intercepted"]
    for n, lab in enumerate(labs):
        pkts = packets_of(cap, lab)
        client, server = stream(pkts, lab, True), stream(pkts, lab, False)
        assert sni_of(client) == b"eu1.ksc.kaspersky.com"
        certs = certificates_in(server)
        leaf = certs[0]
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["proxy.corp.example"]
        assert leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Corp Inspection CA"
        assert tls_records(server)[0][1][4:6] == b"\x03\x03"  # ServerHello: TLS 1.2
        if n == 0:  # the client aborts with a fatal alert after the server's first flight
            ctype, alert = tls_records(client)[-1]
            assert ctype == 21 and alert[0] == 2 and alert[1] in (42, 48), alert
            assert not any(ctype == 23 for ctype, _ in tls_records(server))
        else:  # accepted: application data both ways
            assert any(ctype == 23 for ctype, _ in tls_records(client))
            assert any(ctype == 23 for ctype, _ in tls_records(server))


def test_tls_failed_is_a_server_alert_then_close(gen):
    cap = gen / "blocked_agent.pcap"
    lab = next(lab for lab in all_labels(cap) if lab["expected_reason"] == "tls_failed")
    assert lab["expected_verdict"] == "tls_intercepted" and lab["server_port"] == 23101
    pkts = packets_of(cap, lab)
    server = stream(pkts, lab, False)
    assert server == b"\x15\x03\x03\x00\x02\x02\x28"  # fatal handshake_failure
    assert any("F" in p.flags and not from_client(p, lab) for p in pkts)


def test_not_tls_flows_are_plaintext_http(gen):
    cap = gen / "unexpected_agent.pcap"
    labs = [lab for lab in all_labels(cap) if lab["expected_verdict"] == "unexpected_protocol"]
    assert sorted(lab["server_port"] for lab in labs) == [13000, 23110]
    for lab in labs:
        assert stream(packets_of(cap, lab), lab, True).startswith(b"GET / HTTP/1.1\r\n")


def test_tls_versions(gen):
    def server_version(cap, port):
        lab = next(lab for lab in all_labels(cap) if lab["server_port"] == port and lab["transport"] == "tcp")
        server_hello = tls_records(stream(packets_of(cap, lab), lab, False))[0][1]
        return server_hello
    sh = server_version(gen / "baseline_agent.pcap", 23101)
    assert sh[0] == 2 and b"\x00\x2b\x00\x02\x03\x04" in sh  # supported_versions = TLS 1.3
    sh = server_version(gen / "baseline_agent.pcap", 27201)
    assert sh[0] == 2 and b"\x00\x2b\x00\x02\x03\x04" not in sh and sh[4:6] == b"\x03\x03"


def test_wrong_direction_and_undocumented_port(gen):
    cap = gen / "unexpected_port_direction_agent.pcap"
    std, extra = labels_of(cap)
    assert std == []
    by = {lab["expected_verdict"]: lab for lab in extra}
    wrong = by["unexpected_wrong_direction"]
    assert (wrong["client_ip"], wrong["client_port"], wrong["server_ip"], wrong["server_port"]) == (
        "203.0.113.10", 23101, "192.0.2.10", 40001)
    flags = [p.flags for p in packets_of(cap, wrong)]
    assert flags[:3] == ["S", "SA", "A"]
    port = by["unexpected_undocumented_port"]
    assert port["server_port"] == 8443 and port["expected_purpose"] == ""
    assert sni_of(stream(packets_of(cap, port), port, True)) == b"eu2.ksc.kaspersky.com"
    assert by["unclassified"]["expected_purpose"] == ""


# ---------------------------------------------------------------------------------------------
# Link layers, file formats
# ---------------------------------------------------------------------------------------------

def test_broadcast_and_multicast_link_addresses(gen):
    want = {"192.0.2.255": "ff:ff:ff:ff:ff:ff", "255.255.255.255": "ff:ff:ff:ff:ff:ff",
            "239.192.0.15": "01:00:5e:40:00:0f", "ff15::15": "33:33:00:00:00:15"}
    seen = set()
    for name in ("baseline_agent.pcap", "ipv6_agent.pcap"):
        for p in read(gen / name):
            if p.dst in want:
                assert p.frame[Ether].dst == want[p.dst]
                seen.add(p.dst)
    assert seen == set(want)
    lab = [lab for lab in all_labels(gen / "baseline_agent.pcap") if lab["expected_purpose"] == "gateway_udp"][0]
    assert lab["client_ip"] == "192.0.2.20" and lab["server_port"] == 15000
    assert all(from_client(p, lab) for p in packets_of(gen / "baseline_agent.pcap", lab))


def test_pcapng_has_two_interfaces_with_own_resolution(gen):
    path = gen / "baseline_dp.pcapng"
    with RawPcapNgReader(str(path)) as reader:
        per_iface = defaultdict(int)
        for _data, meta in reader:
            per_iface[meta.ifname] += 1
        interfaces = reader.interfaces
    assert [(linktype, opts["tsresol"]) for linktype, _snap, opts in interfaces] == [
        (1, 10**6), (276, 10**9)]
    assert per_iface[b"eth0"] > 10 and per_iface[b"any"] > 10
    with PcapNgReader(str(path)) as reader:
        frames = list(reader)
    assert len(frames) == len(read(path))
    assert {lab["expected_purpose"] for lab in all_labels(path)} >= {
        "dp_agent_connection", "dp_ksn_proxy_tcp", "dp_push", "dp_ksn_proxy_udp", "dp_ksn_proxy_https"}


def test_ipv6_capture_is_nanosecond_pcap(gen):
    with RawPcapReader(str(gen / "ipv6_agent.pcap")) as reader:
        assert reader.nano


def test_linktype_variants_carry_identical_ip_packets(gen):
    header = {"ether": (1, 14), "vlan": (1, 18), "qinq": (1, 22), "sll2": (276, 20), "raw": (101, 0),
              "null": (0, 4)}
    reference = None
    for variant, (linktype, hdr) in header.items():
        path = gen / "linktypes" / f"agent_{variant}.pcap"
        with RawPcapReader(str(path)) as reader:
            assert reader.linktype == linktype, variant
            packets = [(meta.sec, meta.usec, data[hdr:]) for data, meta in reader]
        if variant == "qinq":
            assert all(data[12:14] == b"\x88\xa8" and data[16:18] == b"\x81\x00"
                       for data, _ in RawPcapReader(str(path)))
        if reference is None:
            reference = packets
        assert packets == reference, variant
        assert len(read(path)) == len(packets)  # scapy decodes every frame down to IP
        assert json.loads(path.with_name(path.name + ".labels.json").read_text())[1]["server_port"] == 23101


def test_midstream_starts_with_a_syn_ack(gen):
    cap = gen / "midstream_agent.pcap"
    pkts = read(cap)
    assert pkts[0].flags == "SA"
    partial = {lab["server_port"]: lab for lab in all_labels(cap) if lab["expected_verdict"] == "ok_partial_capture"}
    assert set(partial) == {23101, 29201}
    long = packets_of(cap, partial[23101])
    assert not any("S" in p.flags for p in long)
    assert stream(long, partial[23101], True)[:1] == b"\x17"  # application data only
    assert len(long) > 40
    tunnel = stream(packets_of(cap, partial[29201]), partial[29201], True)
    assert sni_of(tunnel) == b"eu1.ksc.kaspersky.com"


def test_hostile_names_are_on_the_wire(gen):
    cap = gen / "hostile_names.pcap"
    wire = b"".join(bytes(p.frame) for p in read(cap))
    for needle in (b"\x1b[31m", b"\x1b]0;title\x07", b"<script>alert(1)</script>", b'=HYPERLINK("http://x")',
                   b"\x08" * 17, b"\xff\xfe", b"nul\x00tab"):
        assert needle in wire, needle
    for lab in all_labels(cap):
        if lab["transport"] == "tcp" and lab["expected_purpose"] != "ksn":
            assert lab["expected_verdict"] == "unexpected_host", lab
    names = {lab["sni_or_host"] for lab in all_labels(cap)}
    assert "\\x1b[31mred\\x1b[0m.example.net" in names      # name text: control bytes as \xNN
    assert "\\xff\\xfe.example.net" in names                # invalid UTF-8 as \xNN
    assert all(name is None or name.isprintable() for name in names)
