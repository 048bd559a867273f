"""Session 61 newcomer pass #3: an agent set to use a proxy that never answers shows only SYNs to
the proxy's port: the report said "No KSC agent traffic … captured on the wrong machine?" and
nothing of the attempts. Under that headline, failed attempts to a usual HTTP proxy port are
named (table report and HTML)."""
import io
import subprocess
import sys

from pcapbuild import pcap_bytes, syn_attempts, tcp_session

from kscc_traffic.report import PROXY_PORTS, no_ksc_traffic, silent_proxies

HINT = (" Or the agent goes through a proxy that did not answer: 4 TCP connection attempts to a usual HTTP proxy "
        "port failed, 192.0.2.3:3128 (3 unanswered), 192.0.2.4:8080 (1 refused by a reset): if the agent is set to use "
        "a proxy there (its proxy settings name the address and port), that proxy or the way to it is down: check it, "
        "or capture where the proxy answers")


def _capture(tmp_path, ksc=False):
    recs = []
    for k in range(3):
        recs += syn_attempts(50000 + k, "192.0.2.3", 3128, 1000.0 + 60 * k)
    recs += syn_attempts(51000, "192.0.2.4", 8080, 1001.0, reset=True)
    recs += syn_attempts(52000, "198.51.100.9", 9999, 1002.0)      # (no proxy port: not counted)
    if ksc:
        recs += syn_attempts(53000, "203.0.113.10", 23101, 1003.0)
    path = tmp_path / "proxy.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return path


def _run(*args):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)], capture_output=True, text=True,
                          env={"COLUMNS": "400", "PATH": "/usr/bin:/bin"})


def test_the_headline_names_failed_attempts_to_a_proxy_port(tmp_path):
    path = _capture(tmp_path)
    run = _run("analyze", path)
    assert run.returncode == 0
    text = " ".join(run.stdout.split())          # (the headline wrapped at the terminal's width)
    assert text.startswith("No KSC agent traffic: no flow in this capture goes to a Kaspersky name")
    assert f"captured on the wrong machine, or at the wrong time?{HINT} " in text
    # (chunked: the same report)
    assert _run("analyze", path, "--chunk-mib", "1").stdout == run.stdout


def test_the_html_headline_says_the_same(tmp_path):
    import html
    out = tmp_path / "r.html"
    run = _run("report", _capture(tmp_path), "--html", out)
    assert run.returncode == 0, run.stderr
    assert html.escape(HINT.strip(), quote=True) in out.read_text()


def test_not_said_when_the_capture_holds_ksc_traffic(tmp_path):
    run = _run("analyze", _capture(tmp_path, ksc=True))
    assert "No KSC agent traffic" not in run.stdout and "did not answer" not in run.stdout


def test_silent_proxies_counts_only_failed_tcp_attempts_to_proxy_ports():
    import pandas as pd
    flows = pd.DataFrame({"proto": ["tcp", "tcp", "udp", "tcp", "tcp"], "resp_h": ["a", "a", "a", "b", "c"],
                          "resp_p": [3128, 3128, 3128, 8080, 80], "conn_state": ["S0", "SF", "S0", "REJ", "S0"]})
    assert silent_proxies(flows) == {("a", 3128, "S0"): 1, ("b", 8080, "REJ"): 1}
    # (a scan's probes are not counted: an nmap run over 3128, 8000, 8080… of the public corpus)
    scanned = flows.assign(reason=["port_scan", "", "", "", ""])
    assert silent_proxies(scanned) == {("b", 8080, "REJ"): 1}
    assert 80 not in PROXY_PORTS
    assert no_ksc_traffic(3, 0, proxies={}) == no_ksc_traffic(3, 0)
    assert no_ksc_traffic(3, 1, proxies=silent_proxies(flows)) == ""
