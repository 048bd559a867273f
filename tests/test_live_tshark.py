"""``kscc-traffic live --engine tshark`` (newcomer 17, finding 4).

- A capture that cannot start (invalid filter, no capture permission) is one ``Error:`` line
  and exit status 2, the very line the scapy engine gives; it used to be "Captured 0 packets",
  an empty report and exit status 0 (dumpcap prints "Capturing on" before it opens anything).
- A UDP request answered at once is never reported blocked while the capture runs: pyshark's
  JSON reader held the last packet of a burst (the reply) back until the next packet came,
  so the request looked unanswered once ``--no-answer-timeout`` had passed. A request that is
  really dropped is still reported blocked while the capture runs.

The namespace tests use real dumpcap/tshark/scapy captures, servers and nftables in network
namespaces this process creates (tests/netns.py; 192.0.2.0/24 only), bounded in time and
removed in finalizers; they skip without root, ip/nft, tshark or pyshark. The unit tests read
dumpcap's and tshark's own output.
"""
from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netns

from kscc_traffic.errors import EngineError
from kscc_traffic.live.sources import TsharkSource, dumpcap_error, json_packet, permission_hint

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "samples" / "captures"
LIVE = [sys.executable, "-m", "kscc_traffic", "live"]
NS_REASON = netns.why_unavailable()


TSHARK_REASON = netns.tshark_unavailable()
needs_ns = pytest.mark.skipif(NS_REASON is not None, reason=NS_REASON or "")
needs_tshark = pytest.mark.skipif(TSHARK_REASON is not None, reason=TSHARK_REASON or "")
ENGINES = ["scapy", pytest.param("tshark", marks=needs_tshark)]


# ------------------------------------------------------------------------------ unit
@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark is not installed")
def test_json_packet_is_whole_at_its_closing_line():
    """What tshark -T json printed up to the end of packet 1 already gives packet 1 (pyshark's
    reader needs the ',' written when packet 2 begins); the whole output gives every packet."""
    r = subprocess.run(["tshark", "-n", "-T", "json", "-j", "frame udp tcp", "-r",
                        str(SAMPLES / "blocked_agent.pcap")], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    expected = json.loads(out)
    assert len(expected) > 2
    first_end = out.index(b"\n  }") + 4
    pkt, rest = json_packet(out[:first_end])
    assert rest == b""
    assert json.loads(pkt)["_source"]["layers"]["frame"]["frame.number"] == "1"
    assert json_packet(out[:first_end - 1]) == (None, out[:first_end - 1])
    try:
        from pyshark.tshark.output_parser.tshark_json import TsharkJsonParser
    except ImportError:
        pass
    else:  # the cause: pyshark's reader does not take it yet
        assert TsharkJsonParser()._extract_packet_from_data(out[:first_end])[0] is None
    got, data = [], out
    while True:
        pkt, data = json_packet(data)
        if pkt is None:
            break
        got.append(json.loads(pkt))
    assert got == expected
    assert data.strip() == b"]"


def test_count_blocks_counts_packet_blocks_in_any_pieces():
    """The relay counts the packet blocks of dumpcap's stream however the pipe cuts it."""
    data = (SAMPLES / "baseline_dp.pcapng").read_bytes()       # 116 packets (capinfos)
    for sizes in ([len(data)], [1], [3, 7, 8, 13], [4096, 5]):
        src = TsharkSource("lo", "")
        n, i, k = 0, 0, 0
        while i < len(data):
            step = sizes[k % len(sizes)]
            n += src._count_blocks(data[i:i + step])
            i += step
            k += 1
        assert (n, src._count_ok) == (116, True), sizes
    shb = int.from_bytes(data[4:8], "little")
    bad = TsharkSource("lo", "")
    assert bad._count_blocks(data[:shb] + b"\x06\0\0\0\x05\0\0\0") == 0   # SHB, then a 5-byte block
    assert bad._count_ok is False


#: dumpcap 4.0.17's stderr for each failure, line by line (as TsharkSource keeps it)
FILTER_99999 = ["Capturing on 'kt0'", "dumpcap: Invalid capture filter \"tcp port 99999\" for interface 'kt0'.",
                "That string isn't a valid capture filter (illegal port number 99999 > 65535).",
                "See the User's Guide for a description of the capture filter syntax."]
NO_PERMISSION = ["dumpcap: cap_set_proc() fail return: Operation not permitted", "Capturing on 'kt0'",
                 "dumpcap: You do not have permission to capture on device \"kt0\".",
                 "(socket: Operation not permitted)",
                 "Please check to make sure you have sufficient permissions."]
NOT_UP = ["Capturing on 'kt0'", "dumpcap: Device \"kt0\" is not up.", "(That device is not up)"]
NO_DEVICE = ["Capturing on 'kscct-nope0'", "dumpcap: There is no device named \"kscct-nope0\".",
             "(No such device exists)"]


def test_dumpcap_error_words_as_the_scapy_engine():
    assert dumpcap_error(FILTER_99999, "kt0", "tcp port 99999", 1) == (
        "invalid capture filter 'tcp port 99999': Failed to compile filter expression "
        "'tcp port 99999' (illegal port number 99999 > 65535)")
    assert dumpcap_error(NO_PERMISSION, "kt0", "", 1) == permission_hint("kt0")
    assert dumpcap_error(NOT_UP, "kt0", "", 1) == \
        "cannot capture on kt0: Network is down (dumpcap exited with status 1)"
    with pytest.raises(EngineError, match="unknown interface 'kscct-nope0'; available: "):
        dumpcap_error(NO_DEVICE, "kscct-nope0", "", 1)
    assert dumpcap_error(["Capturing on 'kt0'", "dumpcap: Something new went wrong."], "kt0", "", 2) == \
        "cannot capture on kt0: Something new went wrong. (dumpcap exited with status 2)"
    assert dumpcap_error([], "kt0", "", -9) == \
        "cannot capture on kt0: dumpcap stopped without saying why (dumpcap exited with status -9)"


# ------------------------------------------------------------------------------ namespaces
@pytest.fixture(scope="module", autouse=True)
def _kscct_sweep():
    if NS_REASON is None:
        netns.sweep()
    yield
    if NS_REASON is None:
        netns.sweep()


CLIENT, SERVER = "192.0.2.10", "192.0.2.20"
PORT = 15111                 # dp_ksn_proxy_udp
DROPPED_SPORT = 40111        # the server's nftables drop requests from this source port


@pytest.fixture(scope="module")
def udp_lab():
    """Agent namespace (kt0 192.0.2.10) and server namespace (kt1 192.0.2.20, a UDP echo on
    15111 that answers at once, nftables dropping requests from source port 40111)."""
    if NS_REASON is not None:
        pytest.skip(NS_REASON)
    c = s = ""
    echo = None
    try:
        c, s = netns.new_ns("c"), netns.new_ns("s")
        netns._run(["ip", "-n", c, "link", "add", "kt0", "type", "veth", "peer", "name", "kt1", "netns", s])
        netns._run(["ip", "-n", c, "addr", "add", f"{CLIENT}/24", "dev", "kt0"])
        netns._run(["ip", "-n", s, "addr", "add", f"{SERVER}/24", "dev", "kt1"])
        netns._run(["ip", "-n", c, "link", "set", "kt0", "up"])
        netns._run(["ip", "-n", s, "link", "set", "kt1", "up"])
        rules = (f"table inet kscct {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n"
                 f"  udp dport {PORT} udp sport {DROPPED_SPORT} drop\n }}\n}}\n")
        netns.run_in(s, ["nft", "-f", "-"], input=rules)
        echo = netns.popen_in(s, [sys.executable, str(HERE / "netns.py"), "udp-echo", str(PORT)])
        assert echo.stdout.readline().decode().strip() == "ready"
        yield c, s
    finally:
        if echo is not None:
            netns.stop_process(echo)
        for ns in (c, s):
            if ns:
                netns.delete_ns(ns)


def _one_error_line(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in r.stderr
    return lines[0]


def _capture_left(ns: str) -> list[str]:
    names = []
    for pid in netns._ns_pids(ns):
        try:
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            pass
    return [n for n in names if n in ("tshark", "dumpcap")]


@needs_ns
@needs_tshark
@pytest.mark.parametrize("bpf", ["tcp port 99999", "tcp port banana"])
def test_invalid_filter_same_error_as_scapy(udp_lab, bpf):
    c, _ = udp_lab
    lines = {}
    for engine in ("scapy", "tshark"):
        r = netns.run_in(c, [*LIVE, "-i", "kt0", "--engine", engine, "--filter", bpf, "--duration", "2"],
                         timeout=60, check=False)
        lines[engine] = _one_error_line(r)
    assert lines["tshark"] == lines["scapy"]
    assert lines["tshark"].startswith(f"Error: invalid capture filter {bpf!r}: Failed to compile filter expression")
    assert not _capture_left(c)


@needs_ns
@needs_tshark
@pytest.mark.skipif(not shutil.which("setpriv"), reason="setpriv is needed to drop CAP_NET_RAW")
def test_no_permission_same_error_as_scapy(udp_lab, tmp_path):
    """Root without CAP_NET_RAW/CAP_NET_ADMIN (bounding set): dumpcap cannot open the device."""
    c, _ = udp_lab
    lines = {}
    for engine in ("scapy", "tshark"):
        r = netns.run_in(c, ["setpriv", "--bounding-set", "-net_raw,-net_admin", "--inh-caps",
                             "-net_raw,-net_admin", *LIVE, "-i", "kt0", "--engine", engine, "--duration", "2",
                             "--write", str(tmp_path / f"{engine}.pcapng")], timeout=60, check=False)
        lines[engine] = _one_error_line(r)
    assert lines["tshark"] == lines["scapy"] == f"Error: {permission_hint('kt0')}"
    assert not (tmp_path / "tshark.pcapng").exists()
    assert not _capture_left(c)


@needs_ns
@pytest.mark.parametrize("engine", ENGINES)
def test_answered_udp_request_never_reported_blocked(udp_lab, engine, tmp_path):
    """A dropped request first (blocked while the capture runs), then three requests each
    answered at once, the last one followed by silence: no interim line for them, and the final
    report says ok (history Dd) for each."""
    c, _ = udp_lab
    out, err = tmp_path / "flows.jsonl", tmp_path / "stderr.txt"
    with open(out, "w") as fo, open(err, "w") as fe:
        p = netns.popen_in(c, [*LIVE, "-i", "kt0", "--engine", engine, "--format", "jsonl",
                               "--no-answer-timeout", "1", "--duration", "60"], stdout=fo, stderr=fe)
    try:
        netns.wait_for_line(err, r"^Capturing on kt0", 30, p)
        r = netns.run_in(c, [sys.executable, str(HERE / "netns.py"), "udp-ask", SERVER, str(PORT), "3", "0.5",
                             str(DROPPED_SPORT)])
        assert json.loads(r.stdout) == [f"re:ksn-query-{i}" for i in range(3)]
        last_answer = time.monotonic()
        netns.wait_for_line(err, rf"blocked no_answer udp {re.escape(CLIENT)}:{DROPPED_SPORT} -> "
                                 rf"{re.escape(SERVER)}:{PORT} dp_ksn_proxy_udp", 15, p)
        # a false line for the last answered request would come 1 s (--no-answer-timeout) after
        # it, plus the tshark engine's 1 s lag behind the pipeline: give it 4 s
        time.sleep(max(0.0, last_answer + 4.0 - time.monotonic()))
        assert p.poll() is None
        p.send_signal(signal.SIGINT)
        rc = p.wait(30)
    finally:
        netns.stop_process(p)
    text = err.read_text()
    assert rc == 1, text
    assert "Traceback" not in text
    flagged = [ln for ln in text.splitlines() if " blocked " in ln or " unexpected " in ln]
    assert len(flagged) == 1 and f":{DROPPED_SPORT} -> " in flagged[0], text
    flows = [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
    udp = [f for f in flows if f["proto"] == "udp" and f["resp_p"] == PORT]
    assert len(udp) == 4, udp
    for f in udp:
        if f["orig_p"] == DROPPED_SPORT:
            assert (f["verdict"], f["reason"], f["history"], f["resp_pkts"]) == ("blocked", "no_answer", "D", 0)
        else:
            assert (f["verdict"], f["reason"], f["history"], f["orig_pkts"], f["resp_pkts"]) == \
                ("ok", "", "Dd", 1, 1), f
    assert not _capture_left(c)


@needs_ns
@needs_tshark
def test_interface_gone_mid_capture_stops_with_a_warning(udp_lab):
    """dumpcap stops when its interface is deleted: the capture ends at once with one Warning
    line in dumpcap's words and the report ('stopped by source'), not 'stopped by duration'
    after capturing nothing for the rest of it."""
    c, _ = udp_lab
    netns._run(["ip", "-n", c, "link", "add", "kt9", "type", "veth", "peer", "name", "kt8"])
    for dev in ("kt9", "kt8"):
        netns._run(["ip", "-n", c, "link", "set", dev, "up"])
    p = netns.popen_in(c, [*LIVE, "-i", "kt9", "--engine", "tshark", "--format", "jsonl", "--duration", "40"])
    try:
        assert p.stderr.readline().decode().startswith("Capturing on kt9 (engine tshark)")
        t0 = time.monotonic()
        netns._run(["ip", "-n", c, "link", "del", "kt9"])
        out, err = p.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        netns.stop_process(p)
    lines = err.decode().splitlines()
    assert p.returncode == 0, lines
    # dumpcap says 'The network adapter "kt9" is no longer attached; the capture has stopped.'
    # (or, when libpcap saw the interface go down first, that the adapter "is no longer
    # running"); tshark, reading dumpcap's output, may or may not have ended yet
    assert re.fullmatch(r'Warning: the capture on kt9 stopped by itself: The network adapter .* is no longer '
                        r'\w+; the capture has stopped\. \(dumpcap exited with status 0'
                        r'(, tshark exited with status 0)?\)', lines[0]), lines
    assert lines[1].startswith("Captured ") and lines[1].endswith("stopped by source")
    assert len(lines) == 2 and took < 10
    assert not _capture_left(c)


DELIVERED_SCRIPT = r'''
import json, subprocess, sys, time
from kscc_traffic.live.sources import TsharkSource
netns_py, server, port, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
src = TsharkSource("kt0", f"udp port {port}")
src.start()
client = subprocess.Popen([sys.executable, netns_py, "udp-ask", server, port, count, "0"],
                          stdout=subprocess.PIPE)
read, checks = [], []
end = time.monotonic() + 12
next_check = 0.0
while time.monotonic() < end:
    read += [f[0] for f in src.read(0.02).frames]
    if time.monotonic() >= next_check:
        checks.append((src.delivered_ns(), len(read), time.time_ns()))
        next_check = time.monotonic() + 0.1
answers = json.loads(client.communicate(timeout=30)[0])
src.stop()
rest = [f[0] for f in src.drain().frames]
src.close()
every = read + rest
late = [sum(1 for t in every if t < d) - n for d, n, _ in checks]
print(json.dumps({"answered": sum(a is not None for a in answers), "packets": len(every),
                  "in_order": every == sorted(every), "checks": len(checks),
                  "violations": sum(x > 0 for x in late),
                  "final_lag_s": (checks[-1][2] - checks[-1][0]) / 1e9,
                  "caught_up": checks[-1][0] > max(every)}))
'''


@needs_ns
@needs_tshark
def test_delivered_ns_never_passes_a_packet_still_in_the_pipeline(udp_lab, tmp_path):
    """A burst of 1000 answered requests (2000 packets, more than tshark dissects at once):
    checked every 0.1 s, delivered_ns() — the session's clock — is never later than a packet
    not yet returned by read(); once the burst is through it is 1 s (DUMPCAP_LAG_S) behind the
    wall clock again. (The wall clock, the session's clock before, ran ahead of the pipeline by
    seconds here: 'blocked no_answer' lines for answered requests.)"""
    c, _ = udp_lab
    script = tmp_path / "delivered.py"
    script.write_text(DELIVERED_SCRIPT)
    r = netns.run_in(c, [sys.executable, str(script), str(HERE / "netns.py"), SERVER, str(PORT), "1000"],
                     timeout=90)
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert (got["answered"], got["packets"], got["in_order"]) == (1000, 2000, True), got
    assert got["checks"] > 50 and got["violations"] == 0, got
    assert got["caught_up"] and 1.0 <= got["final_lag_s"] < 1.5, got
    assert not _capture_left(c)
