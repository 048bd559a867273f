"""``kscc-traffic live`` on real traffic: network namespaces, veth, real TLS/TCP/HTTP/UDP servers
and clients, nftables DROP and REJECT (tests/netns.py has the topology). Each engine captures
the same scenario; the verdicts must be the expected ones, the unanswered attempt must be
reported while the capture runs, the pcapng written must be valid and complete, and analysing
it must give the same flows; nothing may be left running.

Skipped with the reason when not root or when namespaces/nftables are unavailable (CI runs as
root). Every step has a timeout; namespaces and processes are removed in finalizers.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netns
from netns import EXPECTED, DROP_PORT, REJECT_PORT

from kscc_traffic.analyze import analyze_file
from kscc_traffic.rules import load_rules

REASON = netns.why_unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


TSHARK_REASON = netns.tshark_unavailable(("tshark", "dumpcap", "capinfos"))
ENGINES = ["scapy", pytest.param("tshark", marks=pytest.mark.skipif(
    TSHARK_REASON is not None, reason=TSHARK_REASON or ""))]


@pytest.fixture(scope="session", autouse=True)
def _kscct_sweep():
    """Session end: remove any kscct- namespace left by this run or a crashed earlier one."""
    netns.sweep()
    yield
    netns.sweep()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = netns.Lab(tmp_path_factory.mktemp("lab"))
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _live_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kscc_traffic", "live", *args]


def _flows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _capinfos_count(path: Path) -> int:
    r = subprocess.run(["capinfos", "-c", "-M", str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "Number of packets" in ln)
    return int(line.split(":")[1].strip())


def _check_pcapng(path: Path, captured: int) -> None:
    assert _capinfos_count(path) == captured
    r = subprocess.run(["tshark", "-r", str(path), "-c", "1000000"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0
    complaints = [ln for ln in r.stderr.splitlines() if ln and not ln.startswith("Running as user")]
    assert not complaints, complaints


def _captured(stderr: str) -> int:
    line = next(ln for ln in stderr.splitlines() if ln.startswith("Captured "))
    return int(line.split()[1])


def _by_port(flows: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for f in flows:
        out.setdefault(int(f["resp_p"]), []).append(f)
    return out


def _same_as_file(flows: list[dict], pcap: Path, engine: str = "builtin") -> None:
    table = analyze_file(pcap, load_rules(), engine=engine).flows
    ref = {r["uid"]: r for r in table.to_dict("records")}
    got = {r["uid"]: r for r in flows}
    assert set(got) == set(ref)
    for uid, r in got.items():
        for col in ("orig_h", "orig_p", "resp_h", "resp_p", "proto", "conn_state", "history",
                    "orig_pkts", "resp_pkts", "orig_bytes", "resp_bytes", "server_name", "purpose",
                    "verdict", "reason"):
            assert r[col] == ref[uid][col], (uid, col, r[col], ref[uid][col])


@pytest.mark.parametrize("engine", ENGINES)
def test_live_capture_in_namespaces(lab, engine, tmp_path):
    """Real servers/clients, nftables DROP and REJECT: live verdicts, pcapng, same as analyze."""
    out, err, pcap = tmp_path / "flows.jsonl", tmp_path / "stderr.txt", tmp_path / "x.pcapng"
    stop_signal = signal.SIGTERM if engine == "scapy" else signal.SIGINT
    with open(out, "w") as fo, open(err, "w") as fe:
        p = netns.popen_in(lab.client, _live_cmd(
            "--interface", "kc0", "--engine", engine, "--write", str(pcap), "--format", "jsonl",
            "--no-answer-timeout", "1", "--duration", "60"), stdout=fo, stderr=fe)
    try:
        netns.wait_for_line(err, r"^Capturing on kc0", 30, p)
        outcome = lab.traffic()
        assert outcome == {"23101": "ok", "443": "ok", "1443": "ok", "80": "ok",
                           str(REJECT_PORT): "refused", str(DROP_PORT): "timeout"}
        # reported as blocked while the capture still runs
        netns.wait_for_line(err, rf"blocked rejected tcp 192\.0\.2\.10:\d+ -> 203\.0\.113\.10:{REJECT_PORT}", 10, p)
        netns.wait_for_line(err, rf"blocked no_answer tcp 192\.0\.2\.10:\d+ -> 203\.0\.113\.10:{DROP_PORT}", 10, p)
        assert p.poll() is None
        time.sleep(1.0)            # the last FIN/ACKs
        p.send_signal(stop_signal)
        rc = p.wait(30)
    finally:
        netns.stop_process(p)
    text = err.read_text()
    assert rc == 1, text
    assert "stopped by signal" in text
    assert "Traceback" not in text
    flows = _flows(out)
    ports = _by_port(flows)
    for port, (proto, purpose, verdict, reason) in EXPECTED.items():
        got = ports.get(port, [])
        assert len(got) == 1, (port, got)
        f = got[0]
        assert (f["proto"], f["purpose"], f["verdict"], f["reason"]) == (proto, purpose, verdict, reason), f
    assert ports[23101][0]["server_name"] == "eu1.ksc.kaspersky.com"
    assert ports[80][0]["server_name"] == "ocsp.digicert.com"
    assert ports[15001][0]["resp_h"] == netns.MCAST_GROUP
    assert ports[DROP_PORT][0]["conn_state"] == "S0" and ports[DROP_PORT][0]["orig_pkts"] >= 2
    # the pcapng: complete, valid, every captured packet; analysing it gives the same flows
    captured = _captured(text)
    _check_pcapng(pcap, captured)
    _same_as_file(flows, pcap)
    if engine == "tshark":
        _same_as_file(flows, pcap, engine="tshark")
    # nothing of the capture left running in the namespace (the UDP listener is the lab's)
    left = {pid: _comm(pid) for pid in netns._ns_pids(lab.client)}
    assert not [c for c in left.values() if c in ("tshark", "dumpcap")], left
    assert p.pid not in left


@pytest.fixture()
def lo_ns(tmp_path):
    ns = netns.new_ns("lo")
    cert, key = netns.make_cert(tmp_path)
    srv = netns.popen_in(ns, [sys.executable, str(netns.HERE / "netns.py"), "lo-serve", str(cert), str(key)])
    try:
        assert srv.stdout.readline().decode().strip() == "ready"
        yield ns
    finally:
        netns.stop_process(srv)
        netns.delete_ns(ns)


def test_live_loopback_duration(lo_ns, tmp_path):
    """Loopback (each packet once, not twice), --duration stop, pcapng equals the capture."""
    out, err, pcap = tmp_path / "flows.jsonl", tmp_path / "stderr.txt", tmp_path / "lo.pcapng"
    with open(out, "w") as fo, open(err, "w") as fe:
        p = netns.popen_in(lo_ns, _live_cmd("-i", "lo", "--duration", "4", "--write", str(pcap),
                                            "--format", "jsonl"), stdout=fo, stderr=fe)
    try:
        netns.wait_for_line(err, r"^Capturing on lo", 30, p)
        r = netns.run_in(lo_ns, [sys.executable, str(netns.HERE / "netns.py"), "lo-client"])
        assert json.loads(r.stdout) == {"23101": ["ok", "ok"], "29200": "refused"}
        rc = p.wait(30)
    finally:
        netns.stop_process(p)
    text = err.read_text()
    assert rc == 1, text
    assert "stopped by duration" in text
    flows = _flows(out)
    tls = [f for f in flows if f["resp_p"] == 23101]
    assert len(tls) == 2 and all(f["verdict"] == "ok" and f["purpose"] == "agent_connection" for f in tls)
    assert all(f["conn_state"] in ("SF", "RSTR", "RSTO", "S1", "S2", "S3") for f in tls)
    rej = [f for f in flows if f["resp_p"] == REJECT_PORT]
    assert len(rej) == 1 and (rej[0]["verdict"], rej[0]["reason"]) == ("blocked", "rejected")
    assert rej[0]["orig_pkts"] == 1 and rej[0]["resp_pkts"] == 1      # not doubled on lo
    _check_pcapng(pcap, _captured(text))
    _same_as_file(flows, pcap)


@pytest.mark.skipif(TSHARK_REASON is not None, reason=TSHARK_REASON or "")
def test_live_count_tshark_loopback(lo_ns, tmp_path):
    """--count N stops after exactly N packets (tshark engine); the pcapng holds exactly N."""
    out, err, pcap = tmp_path / "flows.jsonl", tmp_path / "stderr.txt", tmp_path / "n.pcapng"
    with open(out, "w") as fo, open(err, "w") as fe:
        p = netns.popen_in(lo_ns, _live_cmd("-i", "lo", "--engine", "tshark", "--count", "7",
                                            "--duration", "40", "--write", str(pcap),
                                            "--format", "jsonl"), stdout=fo, stderr=fe)
    try:
        netns.wait_for_line(err, r"^Capturing on lo", 30, p)
        netns.run_in(lo_ns, [sys.executable, str(netns.HERE / "netns.py"), "lo-client"])
        rc = p.wait(30)
    finally:
        netns.stop_process(p)
    text = err.read_text()
    assert rc in (0, 1), text
    assert "stopped by count" in text
    assert _captured(text) == 7
    _check_pcapng(pcap, 7)
    _same_as_file(_flows(out), pcap)
    left = [_comm(pid) for pid in netns._ns_pids(lo_ns)]
    assert "tshark" not in left and "dumpcap" not in left, left
