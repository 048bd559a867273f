"""``kscc-traffic live``: capture -> (pcapng) -> incremental analysis -> live view -> final report.

The loop reads frames from a :class:`~kscc_traffic.live.sources.Source`, writes every captured
frame to the pcapng file (``--write``), decodes it (builtin decoder for the scapy engine,
Wireshark's dissection for the tshark engine) and feeds a
:class:`~kscc_traffic.live.session.LiveSession`; once a second the session is analysed and the
view redrawn. It stops on Ctrl-C (SIGINT), SIGTERM, ``duration`` or ``count``; then the source
is stopped and drained (so every frame the capture handed over is written and analysed), the
pcapng file is closed with its statistics block, and the final flow table is returned.
"""
from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ..capture.decode import decode
from ..capture.frames import Frames
from ..capture.packets import Packets
from ..errors import EngineError
from ..rules import RuleSet, bpf_filter
from ..text import name_text, path_text
from .pcapng_writer import PcapngWriter
from .session import LiveSession, Timeouts
from .sources import Batch, default_interface, open_source
from .view import LiveView

__all__ = ["LiveOptions", "LiveResult", "run_live", "default_filter", "default_filter_summary"]


def default_filter(rules: RuleSet, proxy_ports: tuple = ()) -> str:
    """The capture filter used without ``--filter``: every rule's port, DNS, ICMP, IGMP, IP fragments
    and IPv6 extension headers, untagged, 802.1Q/802.1ad-tagged and QinQ (double-tagged), plus
    ``tcp port N`` per proxy port (:func:`kscc_traffic.rules.bpf_filter`)."""
    return bpf_filter(rules, proxy_ports=proxy_ports)


def default_filter_summary(rules: RuleSet, proxy_ports: tuple = (), vlan: bool = True, chars: int = 0) -> str:
    """What the start line of ``live`` says of the default capture filter (:func:`default_filter`,
    ``chars`` characters long; 0: not said) instead of printing it whole (~2,000 characters:
    newcomer 28 F9): how many distinct rule ports and port ranges it covers, the proxy ports added,
    DNS, ICMP, IGMP and IP fragments, tagged frames or not (``vlan`` False: the untagged form used on
    links without Ethernet headers), and where to see it whole (``rules --bpf``, ``live -v``)."""
    ports = {(r.transport, r.port_range) for r in rules.rules}
    tcp = [r.port_range for r in rules.rules if r.transport == "tcp"]
    extra = sorted({int(p) for p in proxy_ports if not any(lo <= int(p) <= hi for lo, hi in tcp)})
    n = len(ports)
    return (f"the default: the rules' {n} port{'s' if n != 1 else ''}/range{'s' if n != 1 else ''}"
            + (f", proxy port{'s' if len(extra) != 1 else ''} {', '.join(map(str, extra))}" if extra else "")
            + ", DNS, ICMP, IGMP, IP fragments"
            + (", untagged, VLAN and QinQ frames" if vlan else ", untagged frames only")
            + (f" ({chars:,} characters" if chars else " (")
            + ": `kscc-traffic rules --bpf" + "".join(f" --proxy-port {p}" for p in extra)
            + "` prints it, `live -v` shows it here)")


@dataclass
class LiveOptions:
    """What to capture and for how long.

    ``interface`` None: the default route's interface. ``duration`` seconds, ``count``
    packets (None: until a signal). ``bpf`` None: :func:`default_filter` (with
    ``proxy_ports``, the TCP ports of an explicit HTTP proxy); '' captures
    everything. ``no_answer_timeout`` seconds. ``refresh`` seconds between analyses/redraws.
    """

    rules: RuleSet
    interface: Optional[str] = None
    duration: Optional[float] = None
    count: Optional[int] = None
    write: Optional[Path] = None
    engine: str = "scapy"
    bpf: Optional[str] = None
    no_answer_timeout: float = 3.0
    timeouts: Timeouts = field(default_factory=Timeouts)
    refresh: float = 1.0
    max_flows: int = 20_000
    proxy_ports: tuple = ()
    #: the start line shows the default capture filter whole (``live -v``), not its summary
    #: (:func:`default_filter_summary`); a ``--filter`` given is always shown whole
    show_filter: bool = False


@dataclass
class LiveResult:
    """The outcome: ``flows`` (the final table, columns as ``analyze``), ``captured`` (frames
    captured = frames written), ``received``/``dropped`` (the kernel's counters, None when
    unknown), ``stop_reason`` (signal, duration, count, source), ``interface``, ``engine``,
    ``name`` (capture column), ``bpf``, ``note`` (stopped by source: why, one line)."""

    flows: pd.DataFrame
    captured: int
    received: Optional[int]
    dropped: Optional[int]
    stop_reason: str
    interface: str
    engine: str
    name: str
    bpf: str
    note: str = ""


def _frames(frames: list) -> Frames:
    n = len(frames)
    ts = np.fromiter((f[0] for f in frames), np.int64, n)
    lt = np.fromiter((f[1] for f in frames), np.int32, n)
    cap = np.fromiter((len(f[2]) for f in frames), np.int32, n)
    wl = np.fromiter((f[3] for f in frames), np.int32, n)
    off = (np.cumsum(cap, dtype=np.int64) - cap).astype(np.int64)
    return Frames(b"".join(bytes(f[2]) for f in frames), ts, lt, off, cap, wl)


def run_live(opts: LiveOptions, view: Optional[LiveView] = None) -> LiveResult:
    """Capture and analyse until a stop condition (see the module docstring).

    :raises EngineError: the capture cannot start (permissions, unknown interface, invalid
        filter, missing tools) — nothing is left running.
    :raises OSError: the ``write`` file cannot be created.
    """
    view = view or LiveView()
    iface = opts.interface or default_interface()
    bpf = default_filter(opts.rules, opts.proxy_ports) if opts.bpf is None else opts.bpf
    name = name_text(Path(opts.write).name if opts.write else f"live:{iface}")
    if opts.write is not None:
        parent = Path(opts.write).absolute().parent
        if not parent.is_dir():
            raise EngineError(f"{path_text(opts.write)}: folder {path_text(parent)} does not exist")
    source = open_source(opts.engine, iface, bpf)
    stop = threading.Event()
    reason = ["source"]

    def on_signal(signum, frame):
        if stop.is_set():                       # second Ctrl-C: give up waiting
            raise KeyboardInterrupt
        reason[0] = "signal"
        stop.set()

    old = {}
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            old[s] = signal.signal(s, on_signal)
    writer: Optional[PcapngWriter] = None
    session = LiveSession(opts.rules, name=name, no_answer_timeout=opts.no_answer_timeout,
                          timeouts=opts.timeouts, max_flows=opts.max_flows, on_event=view.event)
    captured = 0
    last_ts = 0
    note = ""
    try:
        try:
            source.start()
        except EngineError as e:
            # the default filter's "vlan" clause only compiles on Ethernet-like link types (not on
            # tun/ppp/SLL interfaces): there, fall back to the same filter without it
            if opts.bpf is not None or "capture filter" not in str(e):
                raise
            bpf = bpf_filter(opts.rules, vlan_depth=0, proxy_ports=opts.proxy_ports)
            source = open_source(opts.engine, iface, bpf)
            source.start()
        if opts.write is not None:
            writer = PcapngWriter(opts.write, interface=iface)
        shown = bpf if opts.bpf is not None or opts.show_filter else default_filter_summary(
            opts.rules, opts.proxy_ports, vlan="vlan and" in bpf, chars=len(bpf))
        view.started(iface, source.engine, shown, str(opts.write) if opts.write else None)
        t0 = time.monotonic()
        next_tick = t0 + opts.refresh
        last_count, last_t = 0, t0

        def take(batch: Batch) -> bool:
            """Write and ingest a batch; True when --count is reached."""
            nonlocal captured, last_ts
            frames = batch.frames
            if not frames:
                return False
            full = False
            if opts.count is not None and captured + len(frames) >= opts.count:
                frames = frames[:opts.count - captured]
                full = True
            if writer is not None:
                for fr in frames:
                    writer.write(fr[0], fr[1], fr[2], fr[3])
            if batch.packets is None:
                packets = decode(_frames(frames))
            else:
                p = batch.packets
                if len(frames) < len(batch.frames):
                    p = p.take(p.cols["frame"] < len(frames))
                packets = Packets(p.buf, dict(p.cols), p.stats)
            packets.cols["frame"] = packets.cols["frame"] + captured
            session.ingest(packets)
            captured += len(frames)
            last_ts = max(last_ts, max(f[0] for f in frames))
            return full

        while not stop.is_set():
            now = time.monotonic()
            if opts.duration is not None and now - t0 >= opts.duration:
                reason[0] = "duration"
                break
            wait = next_tick - now
            if opts.duration is not None:
                wait = min(wait, t0 + opts.duration - now)
            batch = source.read(max(min(wait, 0.25), 0))
            if take(batch):
                reason[0] = "count"
                break
            if not batch.frames:
                ended = source.ended()
                if ended:
                    note = ended
                    break
            if time.monotonic() >= next_tick:
                # the session's clock: until when the capture is known complete (the wall
                # clock, or less for an engine whose packets come through a pipeline)
                session.tick(source.delivered_ns())
                if writer is not None:
                    writer.flush()
                now = time.monotonic()
                rec, drop = source.stats()
                view.update({"interface": iface, "engine": source.engine, "elapsed": now - t0,
                             "packets": captured, "pps": (captured - last_count) / max(now - last_t, 1e-3),
                             "dropped": drop, "active": len(session.active),
                             "summarised": session.log.rows}, session.counts(), session.events)
                last_count, last_t = captured, now
                next_tick = now + opts.refresh
        source.stop()
        if reason[0] != "count":
            take(source.drain())
        else:
            source.drain()
    finally:
        view.stop()
        source.close()
        for s, h in old.items():
            signal.signal(s, h)
        rec, drop = source.stats()
        # the capture ended with its last packet when --count stopped it, else when it was
        # stopped (written in the file's statistics blocks: its analysis knows it too)
        end_ns = last_ts if reason[0] == "count" and last_ts else max(last_ts, time.time_ns())
        if writer is not None:
            writer.close(ts_ns=end_ns, received=rec, dropped=drop)
    flows = session.final(end_ns=end_ns)
    session.close()
    return LiveResult(flows, captured, rec, drop, reason[0], iface, source.engine, name, bpf, note)
