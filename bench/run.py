#!/usr/bin/env python3
"""Benchmark kscc-traffic against the per-flow tools people use today, on one synthetic capture.

    python bench/run.py                                  # 1 M packets, pcap, every installed peer, 3 runs each
    python bench/run.py --packets 10000000 --repeat 1    # the 10 M variant
    python bench/run.py --format pcapng --peers tshark,argus
    python bench/run.py --peers none                     # kscc-traffic alone

The capture is made by bench/make_capture.py (cached in bench/out/, made again when the generator
version changes). Every tool runs as a child process; for each the table shows the median wall
time of --repeat runs, packets per second, the peak resident memory of its whole process tree,
and both as a ratio to kscc-traffic. Results also go to bench/out/results.json. See
bench/README.md for what exactly is measured.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
PEERS_DIR = BENCH / "peers"
sys.path.insert(0, str(BENCH))
import make_capture  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
POLL_S = 0.01          # RSS sampling period of the process tree
RESCAN_EVERY = 5       # look for new descendants every RESCAN_EVERY samples


# --------------------------------------------------------------------------- measuring

def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _descendants(root: int) -> set[int]:
    kids = _children_map()
    out, todo = {root}, [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _pss(pid: int) -> int:
    """Proportional set size (bytes) of ``pid``: its RSS with each page shared with other processes
    (a forked worker's pages inherited from its parent, shared libraries) counted as its share."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


@dataclass
class Run:
    wall_s: float
    status: int
    peak_rss: int          # bytes: max(sampled sum over the tree, ru_maxrss from wait4)
    sampled_rss: int
    maxrss: int
    cpu_s: float           # user + system time of the tree (wait4 folds reaped descendants in)
    timed_out: bool = False
    sampled_pss: int = 0   # bytes: the sampled sum of PSS over the tree (0 where /proc has no smaps_rollup)


GNU_TIME = "/usr/bin/time"
_SELF_CMDLINE = open("/proc/self/cmdline", "rb").read()


def _rss_of_tree(pids) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) over ``pids``, bytes."""
    total = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if f.read() == _SELF_CMDLINE:
                    continue  # forked from us and not yet exec'd: that memory is the harness's
        except OSError:
            continue
        total += _rss(p)
        pss += _pss(p)
    return total, pss


def measure(argv: list[str], stdout, stderr, timeout: float, rusage_file: Path) -> Run:
    """Run ``argv``; wall time from spawn to reaping, CPU time and peak RSS of its process tree.

    Peak RSS is the larger of
    (a) the sum of RSS over the process and all its descendants, sampled every 10 ms from /proc:
        this sees processes that run at the same time (nfstream's meters, tshark under pyshark);
    (b) GNU time's "%M" (``/usr/bin/time -v``'s "Maximum resident set size"): the largest peak of
        any single process of the tree, from wait4 (the kernel folds reaped descendants in); this
        sees short spikes between samples. The tool is started as ``/usr/bin/time -f ... -o FILE
        tool ...``; without GNU time, wait4 on the child is used directly, which also counts the
        memory of this harness that the child had before exec (a few tens of MiB).
    CPU time is user + system of the tree from the same rusage. The sum of PSS over the tree is
    sampled with (a): a process forked from another (kscc-traffic's finishing worker) shares its
    parent's pages, which the RSS sum counts twice.
    """
    use_time = os.access(GNU_TIME, os.X_OK)
    if use_time:
        rusage_file.unlink(missing_ok=True)
        argv = [GNU_TIME, "-f", "%M %U %S", "-o", str(rusage_file), "--"] + argv
    res: dict = {}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                            start_new_session=True)

    def reap() -> None:
        _, status, ru = os.wait4(proc.pid, 0)
        res["t"] = time.perf_counter()
        res["status"] = os.waitstatus_to_exitcode(status)
        res["maxrss"] = ru.ru_maxrss * 1024
        res["cpu"] = ru.ru_utime + ru.ru_stime

    th = threading.Thread(target=reap, daemon=True)
    th.start()
    peak, peak_pss, tree, k, timed_out = 0, 0, {proc.pid}, 0, False
    while th.is_alive():
        if k % RESCAN_EVERY == 0:
            tree = _descendants(proc.pid)
        k += 1
        rss, pss = _rss_of_tree(tree)
        peak, peak_pss = max(peak, rss), max(peak_pss, pss)
        th.join(POLL_S)
        if th.is_alive() and time.perf_counter() - t0 > timeout:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # our own child's process group only
            except ProcessLookupError:
                pass
            th.join()
    proc.returncode = res["status"]  # reaped by wait4 above; keep Popen from waiting again
    maxrss, cpu = res["maxrss"], res["cpu"]
    if use_time:
        try:
            m, u, s_ = rusage_file.read_text().strip().splitlines()[-1].split()
            maxrss, cpu = int(m) * 1024, float(u) + float(s_)
        except (OSError, ValueError, IndexError):
            maxrss = 0
    return Run(res["t"] - t0, res["status"], max(peak, maxrss), peak, maxrss, cpu, timed_out, peak_pss)


# --------------------------------------------------------------------------- the tools

@dataclass
class Peer:
    name: str                 # id used by --peers
    label: str                # what the table shows
    install: str              # how to get it
    needs_bin: list[str] = field(default_factory=list)
    needs_mod: list[str] = field(default_factory=list)
    sample: int = 0           # >0: only the first `sample` packets are read, the time extrapolated
    script: str = ""          # a Python peer in bench/peers/
    note: str = ""

    def missing(self) -> str:
        gone = [b for b in self.needs_bin if shutil.which(b) is None]
        gone += [m for m in self.needs_mod if importlib.util.find_spec(m) is None]
        return ", ".join(gone)

    def argv(self, capture: Path, work: Path, limit: int) -> list[str]:
        if self.script:
            cmd = [sys.executable, str(PEERS_DIR / self.script), str(capture),
                   "--output", str(work / f"{self.name}.flows.csv")]
            return cmd + (["--limit", str(limit)] if limit else [])
        if self.name == "cat":
            return ["cat", str(capture)]
        if self.name == "tshark":
            return ["tshark", "-r", str(capture), "-q", "-z", "conv,tcp", "-z", "conv,udp"]
        if self.name == "argus":
            arg = work / "x.argus"
            # -X: ignore /etc/argus.conf (it would add an output file); argus -w refuses to overwrite
            return ["sh", "-c", f"rm -f {shlex.quote(str(arg))} && argus -X -r {shlex.quote(str(capture))} "
                                f"-w {shlex.quote(str(arg))} && ra -n -r {shlex.quote(str(arg))}"]
        raise ValueError(self.name)

    def flows(self, stdout_text: str) -> tuple[int | None, dict]:
        """Flows (records) the tool reported, and the Python peers' own timings."""
        if self.script:
            try:
                info = json.loads(stdout_text.strip().splitlines()[-1])
                return info.get("flows"), info
            except (ValueError, IndexError):
                return None, {}
        if self.name == "tshark":
            return sum(1 for line in stdout_text.splitlines() if "<->" in line), {}
        if self.name == "argus":
            return sum(1 for line in stdout_text.splitlines()[1:] if line.strip() and " man " not in line), {}
        return None, {}


PEERS = [
    Peer("cat", "cat FILE > /dev/null (the read itself)", "coreutils", ["cat"]),
    Peer("tshark", "tshark -z conv,tcp -z conv,udp", "apt-get install tshark", ["tshark"]),
    Peer("argus", "argus + ra (C)", "apt-get install argus-server argus-client", ["argus", "ra"],
         note="ra: one record per flow and 5 s status interval"),
    Peer("dpkt", "dpkt loop + dict of flows", "pip install dpkt", needs_mod=["dpkt"], script="dpkt_flows.py"),
    Peer("nfstream", "nfstream (nDPI, C engine)", "pip install nfstream", needs_mod=["nfstream"],
         script="nfstream_flows.py", note="defaults: nDPI on, a meter process per core"),
    Peer("tshark-fields", "tshark -T fields + pandas groupby", "apt-get install tshark", ["tshark"],
         ["pandas"], script="tshark_fields.py"),
    Peer("scapy", "scapy PcapReader + dict of flows", "pip install scapy", needs_mod=["scapy"],
         script="scapy_flows.py", sample=100_000),
    Peer("pyshark", "pyshark FileCapture + dict of flows", "pip install pyshark (and apt-get install tshark)",
         ["tshark"], ["pyshark"], script="pyshark_flows.py", sample=10_000),
]


def kscc_base(override: str | None) -> list[str]:
    """The command that starts kscc-traffic: ``override`` split as a shell would, else the
    installed console script beside this interpreter (not a pyenv shim, whose start-up would be
    timed too), else ``python -m kscc_traffic``."""
    if override:
        return shlex.split(override)
    script = Path(sys.executable).with_name("kscc-traffic")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kscc_traffic"]


def kscc_argv(capture: Path, override: str | None, extra: str = "", output: Path | str = "/dev/null") -> list[str]:
    """:func:`kscc_base` + ``analyze``; ``extra``: more options of analyze; ``output``: where the
    JSON Lines go (one line per flow; the peers write their tables too)."""
    return kscc_base(override) + ["analyze", str(capture), "--format", "jsonl", "--output", str(output),
                                  *shlex.split(extra)]


_COMPILED = re.compile(r"compiled parts: (\d+) of (\d+) built(.*)")


def compiled_parts(base: list[str]) -> dict:
    """What ``base --version`` says of the compiled parts (kscc_traffic/compiled.py) in the very
    install the runs time: ``{"built": int, "of": int, "line": str}``, or ``{"built": None,
    "line": why}`` when the version text has no such line (an older kscc-traffic, or it did not
    start). A source tree whose ``.so`` files are gone runs the Python fallbacks, ~1.4x slower,
    with nothing else to show for it."""
    try:
        r = subprocess.run(base + ["--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return {"built": None, "line": f"'{' '.join(base)} --version' did not run: {e}"}
    m = _COMPILED.search(r.stdout)
    if not m:
        return {"built": None, "line": f"'{' '.join(base)} --version' does not say which compiled parts are built"}
    return {"built": int(m.group(1)), "of": int(m.group(2)), "line": m.group(0)}


def count_lines(path: Path) -> int | None:
    """Lines in ``path`` (kscc-traffic's JSON Lines: one per flow), None when it is missing."""
    try:
        with open(path, "rb") as f:
            return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return None


def byte_compile() -> str | None:
    """Write the bytecode of the kscc_traffic package this interpreter imports, as ``pip
    install`` does, so that no run compiles its modules from source: an editable install with
    ``PYTHONDONTWRITEBYTECODE`` set (this project's machine has it) otherwise spends ~0.15 s of
    every run on that. Returns a note when it could not (the runs then include compiling)."""
    import compileall
    import importlib.util
    spec = importlib.util.find_spec("kscc_traffic")
    where = list(spec.submodule_search_locations or []) if spec else []
    if not where:
        return "kscc_traffic is not importable here: its bytecode was not written"
    try:
        ok = compileall.compile_dir(where[0], quiet=2, force=False)
    except OSError as e:
        ok, where = False, [f"{where[0]} ({e.strerror})"]
    return None if ok else f"could not write the bytecode of {where[0]}: runs include compiling it"


# --------------------------------------------------------------------------- environment

def _first_line(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        lines = [x for x in (r.stdout + r.stderr).splitlines() if x.strip() and "Running as user" not in x]
        return lines[0].strip() if lines else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _module_version(mod: str) -> str:
    try:
        from importlib.metadata import version
        return version(mod)
    except Exception:
        return ""


def machine() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**30, 1),
        "os": platform.platform(), "python": platform.python_version(),
        "versions": {
            "kscc-traffic": _module_version("kscc-traffic"), "numpy": _module_version("numpy"),
            "pandas": _module_version("pandas"),
            "tshark": _first_line(["tshark", "--version"]) if shutil.which("tshark") else "",
            "argus": _first_line(["argus", "-h"]) if shutil.which("argus") else "",
            "dpkt": _module_version("dpkt"), "scapy": _module_version("scapy"),
            "nfstream": _module_version("nfstream"), "pyshark": _module_version("pyshark"),
        },
    }


def source_state() -> dict:
    """Which kscc-traffic was measured: the commit of the work tree and its uncommitted changes
    under kscc_traffic/ (read-only git commands)."""
    root = BENCH.parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                  timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", "kscc_traffic").splitlines() if line]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "uncommitted": changed}


def capture_for(packets: int, fmt: str, seed: int, regenerate: bool) -> tuple[Path, dict]:
    path = make_capture.default_path(packets, fmt, seed)
    meta_path = Path(str(path) + ".json")
    meta = None
    if path.exists() and meta_path.exists() and not regenerate:
        meta = json.loads(meta_path.read_text())
        if meta.get("generator_version") != make_capture.GENERATOR_VERSION or \
                meta.get("bytes") != path.stat().st_size:
            meta = None
    if meta is None:
        print(f"generating {path.relative_to(BENCH.parent)} ({packets:,} packets, {fmt}) ...", flush=True)
        meta = make_capture.generate(path, packets, fmt, seed, progress=sys.stderr.isatty())
    return path, meta


# --------------------------------------------------------------------------- main

def _mib(b: float | None) -> str:
    return "" if b is None else f"{b / 2**20:,.0f} MiB"


def _secs(s: float | None) -> str:
    if s is None:
        return ""
    return f"{s:,.2f} s" if s < 100 else f"{s:,.0f} s"


def _rate(r: float | None) -> str:
    if not r:
        return ""
    return f"{r / 1e6:.2f} M" if r >= 1e6 else (f"{r / 1e3:,.0f} k" if r >= 1e4 else f"{r / 1e3:.1f} k")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1] if "\n\n" in __doc__ else None)
    ap.add_argument("--packets", type=int, default=make_capture.DEFAULT_PACKETS,
                    help="packets in the generated capture (default %(default)s; 10000000 for the 10 M variant)")
    ap.add_argument("--format", choices=["pcap", "pcapng"], default="pcap")
    ap.add_argument("--seed", type=int, default=make_capture.DEFAULT_SEED,
                    help="the generator's seed: the same seed gives the same capture (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool; the median is reported")
    ap.add_argument("--peers", default="all",
                    help="all, none, or a comma list of: " + ",".join(p.name for p in PEERS))
    ap.add_argument("--kscc", help="command to run instead of the installed kscc-traffic "
                                   "(e.g. 'python -m kscc_traffic')")
    ap.add_argument("--kscc-args", default="", help="more options for kscc-traffic analyze (e.g. '-j 1': "
                                                    "one process)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run before it is killed")
    ap.add_argument("--regenerate", action="store_true", help="make the capture again even if cached")
    ap.add_argument("--results", type=Path, default=OUT / "results.json",
                    help="where the JSON of every run goes (default bench/out/results.json)")
    a = ap.parse_args(argv)

    if a.peers == "all":
        chosen = list(PEERS)
    elif a.peers == "none":
        chosen = []
    else:
        names = [x.strip() for x in a.peers.split(",") if x.strip()]
        unknown = [x for x in names if x not in {p.name for p in PEERS}]
        if unknown:
            ap.error(f"unknown peer(s): {', '.join(unknown)}; known: {', '.join(p.name for p in PEERS)}")
        chosen = [p for p in PEERS if p.name in names]

    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / "peers"
    work.mkdir(exist_ok=True)
    capture, meta = capture_for(a.packets, a.format, a.seed, a.regenerate)
    n_packets = meta["packets"]
    # warm the page cache: every tool reads the file from memory, not from the disk
    subprocess.run(["cat", str(capture)], stdout=subprocess.DEVNULL, check=False)
    load0 = os.getloadavg()
    if load0[0] > 0.5 * (os.cpu_count() or 1):
        print(f"warning: the machine is busy (load average {load0[0]:.1f} on {os.cpu_count()} cores): "
              "wall times will be high and noisy; the CPU-seconds column is less affected", flush=True)

    source_before = source_state()
    if not a.kscc:
        note = byte_compile()
        if note:
            print(f"warning: {note}", flush=True)
    compiled = compiled_parts(kscc_base(a.kscc))
    if compiled["built"] is None:
        print(f"warning: {compiled['line']}", flush=True)
    elif compiled["built"] < compiled["of"]:
        print(f"warning: {compiled['line']}: these are not the figures of a built install", flush=True)
    else:
        print(compiled["line"], flush=True)
    k_out = work / "kscc-traffic.flows.jsonl"
    k_argv = kscc_argv(capture, a.kscc, a.kscc_args, k_out)
    k_label = "kscc-traffic analyze --format jsonl --output FILE"
    jobs: list[tuple[str, str, list[str], Peer | None]] = [("kscc-traffic", k_label, k_argv, None)]
    rows: dict[str, dict] = {"kscc-traffic": {"tool": "kscc-traffic", "label": k_label,
                                              "command": " ".join(k_argv), "runs": []}}
    for p in chosen:
        miss = p.missing()
        if miss:
            rows[p.name] = {"tool": p.name, "label": p.label, "status": "not installed",
                            "missing": miss, "install": p.install}
            continue
        limit = p.sample if p.sample and p.sample < n_packets else 0
        pa = p.argv(capture, work, limit)
        jobs.append((p.name, p.label, pa, p))
        rows[p.name] = {"tool": p.name, "label": p.label, "command": " ".join(pa), "runs": [],
                        "sampled_packets": limit or None, "note": p.note}

    print(f"capture: {capture.relative_to(BENCH.parent)}: {n_packets:,} packets, {meta['flows']:,} flows, "
          f"{meta['bytes'] / 1e6:,.0f} MB ({a.format}); {a.repeat} run(s) per tool", flush=True)
    for r in range(a.repeat):
        for name, label, pa, p in jobs:
            row = rows[name]
            if row.get("status") == "failed":
                continue
            out_path, err_path = work / f"{name}.stdout", work / f"{name}.stderr"
            with open(out_path, "wb") as so, open(err_path, "wb") as se:
                run = measure(pa, subprocess.DEVNULL if name in ("kscc-traffic", "cat") else so, se, a.timeout,
                              work / f"{name}.rusage")
            ok_codes = (0, 1) if p is None else (0,)  # kscc-traffic: 1 = something is blocked
            text = out_path.read_text(errors="replace") if p is not None else ""
            flows, info = p.flows(text) if p is not None else (count_lines(k_out), {})
            if run.timed_out or run.status not in ok_codes:
                err = err_path.read_text(errors="replace").strip().splitlines()[-3:]
                row.update(status="failed", error=("timed out" if run.timed_out else f"exit {run.status}: ")
                           + " | ".join(err))
                print(f"  run {r + 1}: {name}: FAILED ({row['error']})", flush=True)
                continue
            row["runs"].append({"wall_s": round(run.wall_s, 4), "cpu_s": round(run.cpu_s, 3),
                                "load_avg_1min": round(os.getloadavg()[0], 2), "peak_rss_bytes": run.peak_rss,
                                "sampled_tree_rss_bytes": run.sampled_rss, "ru_maxrss_bytes": run.maxrss,
                                "sampled_tree_pss_bytes": run.sampled_pss,
                                "exit": run.status, "flows": flows, **({"self": info} if info else {})})
            print(f"  run {r + 1}: {name:<14} {run.wall_s:9.2f} s  {_mib(run.peak_rss):>10}  "
                  f"(PSS {_mib(run.sampled_pss)})", flush=True)

    # summarise
    for name, row in rows.items():
        runs = row.get("runs")
        if not runs or row.get("status") == "failed":
            row.setdefault("status", "failed" if runs is not None else row.get("status"))
            continue
        row["status"] = "ok"
        wall = statistics.median(x["wall_s"] for x in runs)
        row["wall_s_median"] = round(wall, 4)
        row["cpu_s_median"] = round(statistics.median(x["cpu_s"] for x in runs), 3)
        row["peak_rss_bytes"] = max(x["peak_rss_bytes"] for x in runs)
        row["peak_pss_bytes"] = max(x.get("sampled_tree_pss_bytes", 0) for x in runs)
        row["flows"] = runs[-1]["flows"]
        sampled = row.get("sampled_packets")
        if sampled:
            # the first `sampled` packets only: estimate the whole capture from the packet loop's
            # own time (start-up and imports are not multiplied)
            loop = statistics.median(x["self"]["loop_s"] for x in runs)
            done = runs[-1]["self"]["packets"]
            row["measured_wall_s"] = row["wall_s_median"]
            row["wall_s_median"] = round(wall + loop * (n_packets / done - 1), 2)
            row["packets_per_s"] = round(done / loop)
            row["extrapolated"] = True
        else:
            row["packets_per_s"] = round(n_packets / wall)
    base = rows["kscc-traffic"]
    for row in rows.values():
        if row.get("status") == "ok" and base.get("status") == "ok":
            row["time_vs_kscc"] = round(row["wall_s_median"] / base["wall_s_median"], 3)
            row["rss_vs_kscc"] = round(row["peak_rss_bytes"] / base["peak_rss_bytes"], 3)

    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "machine": machine(),
        "kscc_traffic_source": source_before,
        "kscc_traffic_compiled": compiled,
        "capture": {"path": str(capture.relative_to(BENCH.parent)), **meta},
        "repeat": a.repeat,
        "load_average_before": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "method": {
            "wall": "spawn to exit of the tool's process, median of the runs; page cache warm",
            "cpu": "user + system seconds of the process tree (wait4 rusage), median of the runs",
            "peak_rss": "max(sum of RSS over the process tree sampled every 10 ms from /proc, GNU time %M "
                        "= /usr/bin/time -v 'Maximum resident set size' of the tree (largest single "
                        "process, reaped descendants included))",
            "peak_pss": "sum of PSS (/proc/PID/smaps_rollup) over the process tree sampled every 10 ms: "
                        "pages shared between processes (a forked worker's) counted once",
            "sampled": "scapy and pyshark read only the first packets; wall = measured wall + packet-loop "
                       "time x (packets / packets read - 1)",
        },
        "results": list(rows.values()),
    }
    if source_state() != source_before:
        result["kscc_traffic_source_after"] = source_state()
        print("warning: kscc_traffic/ changed during the run (commit or uncommitted files): "
              "its runs may mix versions", flush=True)
    a.results.parent.mkdir(parents=True, exist_ok=True)
    a.results.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result, n_packets)
    print(f"results: {a.results}")
    return 0 if base.get("status") == "ok" else 1


def print_table(result: dict, n_packets: int) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        Console = None
    m = result["machine"]
    cap = result["capture"]
    title = (f"{n_packets:,} packets, {cap['flows']:,} flows, {cap['bytes'] / 1e6:,.0f} MB {cap['format']} — "
             f"{m['cpu']}, {m['cores']} cores, median of {result['repeat']}")
    head = ["tool", "wall (median)", "CPU", "packets/s", "peak RSS", "peak PSS", "time ÷ kscc", "RSS ÷ kscc",
            "flows", "notes"]
    body = []
    for r in result["results"]:
        if r.get("status") != "ok":
            what = r.get("status") or "failed"
            note = f"{r.get('install', '')}" if what == "not installed" else r.get("error", "")
            body.append([r["label"], what, "", "", "", "", "", "", "", note])
            continue
        note = r.get("note", "")
        if r.get("extrapolated"):
            note = (f"read the first {r['sampled_packets']:,} packets ({_secs(r['measured_wall_s'])}), "
                    f"time extrapolated, RSS as measured") + (f"; {note}" if note else "")
        body.append([r["label"], _secs(r["wall_s_median"]) + (" (est.)" if r.get("extrapolated") else ""),
                     _secs(r["cpu_s_median"]) + (" (sample)" if r.get("extrapolated") else ""), _rate(r["packets_per_s"]), _mib(r["peak_rss_bytes"]),
                     _mib(r.get("peak_pss_bytes") or None),
                     f"{r['time_vs_kscc']:.2f}×" if "time_vs_kscc" in r else "",
                     f"{r['rss_vs_kscc']:.2f}×" if "rss_vs_kscc" in r else "",
                     f"{r['flows']:,}" if r.get("flows") is not None else "", note])
    if Console is None:
        print(title)
        for line in [head] + body:
            print(" | ".join(line))
        return
    t = Table(title=title, title_justify="left")
    for i, h in enumerate(head):
        t.add_column(h, justify="right" if 0 < i < 9 else "left", overflow="fold")
    for line in body:
        t.add_row(*line)
    width = None if sys.stdout.isatty() else 200  # rich's 80 columns when piped are too narrow
    Console(width=width).print(t)


if __name__ == "__main__":
    sys.exit(main())
