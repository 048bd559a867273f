"""Real-traffic fixtures for the live-capture tests: network namespaces joined by a veth pair,
real servers and clients, nftables rules. No mocks.

Topology (every name starts with :data:`PREFIX`; addresses only from 192.0.2.0/24 and
203.0.113.0/24, documentation ranges, inside namespaces this process creates; nothing is added
to the host's namespace)::

    kscct-<pid>-<n>-c  (the "agent")                 kscct-<pid>-<n>-s  (the "cloud")
      kc0 192.0.2.10/24  <------- veth ------->  ks0 203.0.113.10/24
      route 203.0.113.0/24 dev kc0 (on link)        route 192.0.2.0/24 dev ks0 (on link)
      UDP listeners 15000, 15001                    route 239.0.0.0/8 dev ks0 (multicast)
                                                    TLS 23101 and 443, TCP 1443, HTTP 80
                                                    nftables (table inet kscct, input hook):
                                                      tcp dport 27200 drop          (DROP_PORT)
                                                      tcp dport 29200 reject with tcp reset
                                                                                    (REJECT_PORT)

The client (:func:`client_main`) opens TLS to 23101 (SNI eu1.ksc.kaspersky.com) and 443 (SNI
discovery.ksc.kaspersky.com), a plain TCP exchange on 1443, an HTTP GET on 80 (Host
ocsp.digicert.com), then SYNs to :data:`DROP_PORT` (unanswered: no_answer) and
:data:`REJECT_PORT` (reset: rejected). :func:`udp_main` in the server namespace sends datagrams
to the agent's 15000 (unicast) and 15001 (multicast 239.192.0.15). Expected verdicts:
:data:`EXPECTED`.

Everything is bounded: each client step has a timeout, servers are killed at teardown by pid,
then every pid left in our namespaces is killed and the namespaces deleted — in fixture
finalizers (so also when a test fails), at interpreter exit, and by the session-end sweep
(:func:`sweep`) of any ``kscct-`` namespace whose creating process is gone.

Run as a script, this file is the servers/clients: ``python netns.py serve CERT KEY``,
``python netns.py client SERVER``, ``python netns.py udp DEST``, ``python netns.py udp-listen``,
``python netns.py lo-serve CERT KEY`` / ``lo-client`` (loopback test), ``python netns.py udp-echo
PORT`` / ``udp-ask SERVER PORT N GAP [SPORT]`` (UDP requests answered at once).
"""
from __future__ import annotations

import atexit
import datetime
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

PREFIX = "kscct-"
CLIENT_ADDR = "192.0.2.10"
SERVER_ADDR = "203.0.113.10"
MCAST_GROUP = "239.192.0.15"
TLS_PORTS = (23101, 443)
TCP_PORT = 1443
HTTP_PORT = 80
UDP_PORTS = (15000, 15001)
DROP_PORT = 27200      # activation: nftables drop -> the SYNs go unanswered
REJECT_PORT = 29200    # klsctunnel: nftables reject with tcp reset
#: resp_p -> (protocol, purpose, verdict, reason) a correct capture gives
EXPECTED = {
    23101: ("tcp", "agent_connection", "ok", ""),
    443: ("tcp", "discovery", "ok", ""),
    1443: ("tcp", "ksn", "ok", ""),
    80: ("tcp", "cert_check", "ok", ""),
    DROP_PORT: ("tcp", "activation", "blocked", "no_answer"),
    REJECT_PORT: ("tcp", "klsctunnel", "blocked", "rejected"),
    15000: ("udp", "gateway_udp", "ok", ""),
    15001: ("udp", "dp_multicast", "ok", ""),
}
HERE = Path(__file__).resolve().parent
STEP_TIMEOUT = 20.0

_created: list[str] = []
_procs: list[subprocess.Popen] = []
_counter = [0]


# ------------------------------------------------------------------------------ availability
def _run(args: list[str], timeout: float = 15.0, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=check, **kw)


def tshark_unavailable(tools: tuple[str, ...] = ("tshark", "dumpcap")) -> str | None:
    """Why the tshark live engine cannot run here (a tool of ``tools`` or pyshark missing), or
    None."""
    for tool in tools:
        if not shutil.which(tool):
            return f"{tool} is not installed (apt-get install tshark)"
    try:
        import pyshark  # noqa: F401
    except ImportError:
        return "pyshark is not installed (pip install '.[tshark]')"
    return None


def why_unavailable() -> str | None:
    """None when namespaces, veth and nftables can be used here; else the reason to skip."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth, nftables, raw capture); CI runs as root"
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            return f"{tool} is not installed (apt-get install {'iproute2' if tool == 'ip' else 'nftables'})"
    name = f"{PREFIX}{os.getpid()}-probe"
    try:
        _run(["ip", "netns", "add", name])
        try:
            r = _run(["ip", "netns", "exec", name, "nft", "list", "tables"], check=False)
            if r.returncode != 0:
                return f"nftables unusable in a namespace: {r.stderr.strip()}"
        finally:
            _run(["ip", "netns", "del", name], check=False)
    except (subprocess.SubprocessError, OSError) as e:
        return f"cannot create a network namespace: {getattr(e, 'stderr', '') or e}"
    return None


# ------------------------------------------------------------------------------ cleanup
def _ns_pids(ns: str) -> list[int]:
    r = _run(["ip", "netns", "pids", ns], check=False)
    return [int(x) for x in r.stdout.split() if x.isdigit()]


def kill_ns_processes(ns: str) -> None:
    """Kill (by pid) every process still running in namespace ``ns`` — all started by us."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _ns_pids(ns)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and _ns_pids(ns):
            time.sleep(0.05)


def delete_ns(ns: str) -> None:
    """Kill what runs in ``ns`` and delete it (no error when already gone)."""
    kill_ns_processes(ns)
    _run(["ip", "netns", "del", ns], check=False)
    if ns in _created:
        _created.remove(ns)


def stop_process(p: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, the process ``p`` we started (by its pid)."""
    if p.poll() is None:
        try:
            p.terminate()
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout)
    for f in (p.stdout, p.stderr, p.stdin):
        try:
            if f:
                f.close()
        except Exception:
            pass


def our_namespaces() -> list[str]:
    """``kscct-`` namespaces that exist now."""
    r = _run(["ip", "netns", "list"], check=False)
    return [ln.split()[0] for ln in r.stdout.splitlines() if ln.startswith(PREFIX)]


def sweep() -> list[str]:
    """Delete every ``kscct-`` namespace created by this process or by one that is gone
    (a crashed earlier run); returns their names."""
    gone = []
    for ns in our_namespaces():
        m = re.match(rf"{PREFIX}(\d+)-", ns)
        owner = int(m.group(1)) if m else None
        alive = False
        if owner is not None and owner != os.getpid():
            try:
                os.kill(owner, 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except PermissionError:
                alive = True
        if not alive:
            delete_ns(ns)
            gone.append(ns)
    return gone


def _atexit() -> None:
    for p in list(_procs):
        try:
            stop_process(p, 2)
        except Exception:
            pass
    for ns in list(_created):
        try:
            delete_ns(ns)
        except Exception:
            pass


atexit.register(_atexit)


# ------------------------------------------------------------------------------ the lab
def new_ns(role: str) -> str:
    """Create a namespace ``kscct-<pid>-<n>-<role>`` with its loopback up."""
    _counter[0] += 1
    ns = f"{PREFIX}{os.getpid()}-{_counter[0]}-{role}"
    _run(["ip", "netns", "add", ns])
    _created.append(ns)
    _run(["ip", "-n", ns, "link", "set", "lo", "up"])
    for k in ("all", "default"):
        _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{k}.disable_ipv6=1"],
             check=False)
    return ns


def popen_in(ns: str, args: list[str], **kw) -> subprocess.Popen:
    """Start ``args`` inside namespace ``ns``; remembered for cleanup."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(["ip", "netns", "exec", ns, *args], **kw)
    _procs.append(p)
    return p


def run_in(ns: str, args: list[str], timeout: float = STEP_TIMEOUT, check: bool = True,
           **kw) -> subprocess.CompletedProcess:
    """Run ``args`` inside ``ns`` to completion (bounded by ``timeout`` seconds)."""
    return _run(["ip", "netns", "exec", ns, *args], timeout=timeout, check=check, **kw)


def live_on_idle_lo(workdir: Path, *args: str, timeout: float = 90.0) -> tuple[int, str]:
    """Run ``python -m kscc_traffic live -i lo --duration 1 --format jsonl ARGS`` (this checkout's)
    in a network namespace of its own, where nothing is sent (0 packets captured, unless ``ARGS``
    sends some); its report goes to ``workdir/out.jsonl``, its standard error to
    ``workdir/err.txt``. Returns (exit status, standard error text). The process is stopped and
    the namespace deleted whatever happens; ``timeout`` (seconds) bounds the run
    (:class:`subprocess.TimeoutExpired`)."""
    ns = new_ns("lo")
    err = workdir / "err.txt"
    try:
        with open(err, "w") as fe, open(workdir / "out.jsonl", "w") as fo:
            p = popen_in(ns, [sys.executable, "-m", "kscc_traffic", "live", "-i", "lo", "--duration", "1",
                              "--format", "jsonl", *args], stdout=fo, stderr=fe, cwd=HERE.parent)
        try:
            rc = p.wait(timeout)
        finally:
            stop_process(p)
    finally:
        delete_ns(ns)
    return rc, err.read_text()


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for *.ksc.kaspersky.com (and the other names the client
    asks for); returns (cert, key) PEM paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "*.ksc.kaspersky.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("*.ksc.kaspersky.com"), x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    c, k = directory / "cert.pem", directory / "key.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return c, k


def wait_for_line(path: Path, pattern: str, timeout: float, proc: subprocess.Popen | None = None) -> str:
    """Wait until a line of file ``path`` matches regex ``pattern``; returns it.

    :raises TimeoutError: not within ``timeout`` seconds (or ``proc`` ended first).
    """
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if rx.search(line):
                    return line
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    text = path.read_text(errors="replace") if path.exists() else ""
    raise TimeoutError(f"no line matching {pattern!r} in {path.name} within {timeout}s: {text[-800:]}")


class Lab:
    """The two-namespace lab of the module docstring. :meth:`up` builds it, :meth:`down`
    removes everything (also safe after a partial :meth:`up`)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.client = ""
        self.server = ""
        self.servers: list[subprocess.Popen] = []

    def up(self) -> "Lab":
        self.client = new_ns("c")
        self.server = new_ns("s")
        _run(["ip", "-n", self.client, "link", "add", "kc0", "type", "veth", "peer", "name",
              "ks0", "netns", self.server])
        _run(["ip", "-n", self.client, "addr", "add", f"{CLIENT_ADDR}/24", "dev", "kc0"])
        _run(["ip", "-n", self.server, "addr", "add", f"{SERVER_ADDR}/24", "dev", "ks0"])
        for ns, dev in ((self.client, "kc0"), (self.server, "ks0")):
            _run(["ip", "-n", ns, "link", "set", dev, "up"])
        _run(["ip", "-n", self.client, "route", "add", "203.0.113.0/24", "dev", "kc0"])
        _run(["ip", "-n", self.server, "route", "add", "192.0.2.0/24", "dev", "ks0"])
        _run(["ip", "-n", self.server, "route", "add", "239.0.0.0/8", "dev", "ks0"])
        rules = (f"table inet kscct {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n"
                 f"  tcp dport {DROP_PORT} drop\n  tcp dport {REJECT_PORT} reject with tcp reset\n }}\n}}\n")
        run_in(self.server, ["nft", "-f", "-"], input=rules)
        cert, key = make_cert(self.workdir)
        srv = popen_in(self.server, [sys.executable, str(HERE / "netns.py"), "serve", str(cert), str(key)])
        self.servers.append(srv)
        lis = popen_in(self.client, [sys.executable, str(HERE / "netns.py"), "udp-listen"])
        self.servers.append(lis)
        for p in (srv, lis):
            line = p.stdout.readline().decode().strip()  # each prints "ready" once listening
            if line != "ready":
                raise RuntimeError(f"lab server did not start: {line} {p.stderr.read().decode()[-500:]}")
        return self

    def traffic(self) -> dict:
        """Run the client in the agent namespace and the UDP sender in the cloud namespace;
        returns the client's outcome per port (connected, refused, timeout …)."""
        r = run_in(self.client, [sys.executable, str(HERE / "netns.py"), "client", SERVER_ADDR],
                   timeout=STEP_TIMEOUT)
        run_in(self.server, [sys.executable, str(HERE / "netns.py"), "udp", CLIENT_ADDR],
               timeout=STEP_TIMEOUT)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def down(self) -> None:
        for p in self.servers:
            stop_process(p)
            if p in _procs:
                _procs.remove(p)
        for ns in (self.client, self.server):
            if ns:
                delete_ns(ns)


# ------------------------------------------------------------------------------ servers/clients
def _tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def _serve_conn(conn: socket.socket, kind: str, ctx) -> None:
    conn.settimeout(5)
    try:
        if kind == "tls":
            conn = ctx.wrap_socket(conn, server_side=True)
        data = conn.recv(4096)
        if kind == "http":
            body = b"ok"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n" + body)
        elif data:
            conn.sendall(b"pong:" + data[:64])
            if kind == "tcp":                   # then take whatever else comes, until EOF
                while conn.recv(65536):
                    pass
    except (OSError, ssl.SSLError):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def _listener(addr: str, port: int, kind: str, ctx) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)

    def loop():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=_serve_conn, args=(c, kind, ctx), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return s


def serve_main(cert: str, key: str, addr: str = "0.0.0.0", duration: float = 600.0) -> None:
    """TLS on 23101 and 443, TCP on 1443, HTTP on 80; exits after ``duration`` s at most."""
    ctx = _tls_context(cert, key)
    for p in TLS_PORTS:
        _listener(addr, p, "tls", ctx)
    _listener(addr, TCP_PORT, "tcp", None)
    _listener(addr, HTTP_PORT, "http", None)
    print("ready", flush=True)
    time.sleep(duration)


def udp_listen_main(duration: float = 600.0) -> None:
    """UDP listeners on 15000 and 15001 (the agent side); exits after ``duration`` s at most."""
    socks = []
    for p in UDP_PORTS:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", p))
        socks.append(s)
    print("ready", flush=True)
    deadline = time.monotonic() + duration
    import select
    while time.monotonic() < deadline:
        r, _, _ = select.select(socks, [], [], 1)
        for s in r:
            s.recvfrom(2048)


def _tls_client(addr: str, port: int, sni: str) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((addr, port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            t.sendall(b"hello")
            t.recv(100)
            try:
                t.unwrap()
            except (OSError, ssl.SSLError):
                pass
    return "ok"


def _connect(addr: str, port: int, payload: bytes, timeout: float) -> str:
    try:
        with socket.create_connection((addr, port), timeout=timeout) as s:
            if payload:
                s.sendall(payload)
                s.recv(1024)
            s.shutdown(socket.SHUT_WR)
            try:
                while s.recv(1024):
                    pass
            except OSError:
                pass
        return "ok"
    except ConnectionRefusedError:
        return "refused"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return f"error {e.errno}"


def client_main(server: str) -> None:
    """The agent's connections (see the module docstring); prints one JSON line of outcomes."""
    out = {}
    out["23101"] = _tls_client(server, 23101, "eu1.ksc.kaspersky.com")
    out["443"] = _tls_client(server, 443, "discovery.ksc.kaspersky.com")
    out["1443"] = _connect(server, TCP_PORT, b"ksn-request", 5)
    out["80"] = _connect(server, HTTP_PORT, b"GET /status HTTP/1.1\r\nHost: ocsp.digicert.com\r\n"
                                           b"Connection: close\r\n\r\n", 5)
    out[str(REJECT_PORT)] = _connect(server, REJECT_PORT, b"", 3)
    out[str(DROP_PORT)] = _connect(server, DROP_PORT, b"", 2.5)   # SYN, 1 retransmission
    print(json.dumps(out), flush=True)


def udp_main(dest: str) -> None:
    """Datagrams from the cloud side: unicast to dest:15000, multicast to 239.192.0.15:15001."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    for _ in range(2):
        s.sendto(b"gateway-data", (dest, 15000))
        s.sendto(b"dp-multicast", (MCAST_GROUP, 15001))
        time.sleep(0.05)
    s.close()


def udp_echo_main(port: int, duration: float = 120.0) -> None:
    """Answer each datagram to UDP ``port`` at once (``re:`` + its bytes); exits after
    ``duration`` s at most."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.settimeout(1)
    print("ready", flush=True)
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        try:
            data, addr = s.recvfrom(2048)
        except socket.timeout:
            continue
        s.sendto(b"re:" + data, addr)


def udp_ask_main(server: str, port: int, count: int, gap: float, first_sport: int = 0) -> None:
    """``first_sport`` (when not 0): one request from that source port first (the lab drops it),
    without waiting for an answer; then ``count`` requests ``gap`` s apart from source ports
    41000, 41001 … (one flow each), each waiting up to 2 s for its answer. Prints one JSON line: the answers' texts, None for a timeout."""
    if first_sport:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", first_sport))
        s.sendto(b"ksn-query-dropped", (server, port))
        s.close()
    out = []
    for i in range(count):
        time.sleep(gap)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 41000 + i % 20000))   # each request its own flow
        s.settimeout(2)
        s.sendto(b"ksn-query-%d" % i, (server, port))
        try:
            out.append(s.recvfrom(2048)[0].decode())
        except socket.timeout:
            out.append(None)
        s.close()
    print(json.dumps(out), flush=True)


def lo_client_main() -> None:
    """Loopback: TLS to 127.0.0.1:23101 twice and a SYN to a closed port (29200, reset)."""
    out = {"23101": [_tls_client("127.0.0.1", 23101, "eu1.ksc.kaspersky.com") for _ in range(2)],
           "29200": _connect("127.0.0.1", REJECT_PORT, b"", 3)}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        serve_main(sys.argv[2], sys.argv[3])
    elif cmd == "lo-serve":
        ctx = _tls_context(sys.argv[2], sys.argv[3])
        _listener("127.0.0.1", 23101, "tls", ctx)
        print("ready", flush=True)
        time.sleep(600)
    elif cmd == "udp-listen":
        udp_listen_main()
    elif cmd == "client":
        client_main(sys.argv[2])
    elif cmd == "lo-client":
        lo_client_main()
    elif cmd == "udp":
        udp_main(sys.argv[2])
    elif cmd == "udp-echo":
        udp_echo_main(int(sys.argv[2]))
    elif cmd == "udp-ask":
        udp_ask_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]),
                     int(sys.argv[6]) if len(sys.argv) > 6 else 0)
    else:
        raise SystemExit(f"unknown command {cmd}")
