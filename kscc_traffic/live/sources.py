"""Live capture sources: where captured frames come from.

Two engines, one interface (:class:`Source`):

- :class:`ScapySource` (default, needs no Wireshark): a Linux ``AF_PACKET`` socket opened by
  scapy (``L2ListenSocket``: promiscuous mode, BPF filter compiled by libpcap and attached in the
  kernel); frames are read with ``recvmsg`` so each gets the kernel's nanosecond timestamp
  (``SO_TIMESTAMPNS``) and its VLAN tag back (``PACKET_AUXDATA``, re-inserted like libpcap does).
  On a loopback interface the outgoing copy of each packet is skipped (libpcap does the same).
  Kernel drops come from ``PACKET_STATISTICS``.
- :class:`TsharkSource` (``--engine tshark``): pyshark's ``LiveCapture`` — ``dumpcap`` piped
  into ``tshark -l -T json -x`` — in a worker thread with its own event loop. Each packet arrives
  with its raw bytes (for ``--write``) and Wireshark's dissection, turned into Packets rows by
  :class:`kscc_traffic.engines.tshark.PacketBuilder`. Both child processes get their own process
  group (a terminal's Ctrl-C reaches only us) and ``PR_SET_PDEATHSIG`` (they die with us); on
  stop ``dumpcap`` gets SIGTERM, ``tshark`` drains the pipe and exits, and anything still alive
  after a grace period is killed by pid. No tshark/dumpcap process outlives :meth:`close`.
  dumpcap's output goes through a relay thread of ours on its way to tshark: its first bytes
  (the pcapng header, written once the interface is open and the filter set) say the capture
  has started — dumpcap prints "Capturing on" before it tries either, so a failure is told from
  its exit and its stderr — and the relay counts the packet blocks, so that
  :meth:`TsharkSource.delivered_ns` knows when every packet dumpcap wrote has come out of tshark.
  Each packet is handed over as soon as tshark has printed it (pyshark's own JSON reader holds
  it back until the next packet begins).

A frame is ``(ts_ns, linktype, data, wirelen)``: epoch nanoseconds, LINKTYPE_*, captured bytes,
original length in bytes.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import queue
import re
import select
import signal
import socket
import struct
import sys
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import EngineError

__all__ = ["Frame", "Batch", "Source", "ScapySource", "TsharkSource", "list_interfaces", "interface_state",
           "default_interface", "default_interface_why", "check_interface", "permission_hint", "open_source"]

Frame = tuple  # (ts_ns: int, linktype: int, data: bytes, wirelen: int)

SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_AUXDATA = 8
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
ARPHRD_TO_LINKTYPE = {1: 1, 772: 1, 65534: 101, 776: 101, 778: 101, 803: 127, 801: 105, 512: 9}
#: Wireshark WTAP_ENCAP_* -> LINKTYPE_* for the encapsulations a live capture gives
WTAP_TO_LINKTYPE = {1: 1, 25: 113, 210: 276, 7: 101, 15: 0, 20: 105, 23: 127, 4: 9, 129: 228,
                    130: 229}
RCVBUF = 8 << 20


def extra_hint(extra: str) -> str:
    """How to install one of kscc-traffic's extras (``live``: scapy, ``tshark``: pyshark), for an
    installed package and for a clone (README, Live capture)."""
    return f"pip install 'kscc-traffic[{extra}]' (in a clone of the project: pip install -e '.[{extra}]')"


def permission_hint(interface: str = "") -> str:
    """The one-line explanation of how to get capture permission."""
    py = os.path.realpath(sys.executable)
    on = f" on {interface}" if interface else ""
    return (f"capturing{on} needs root or the CAP_NET_RAW capability: run it with sudo "
            f"(sudo kscc-traffic live …), or grant the capability once with "
            f"`sudo setcap cap_net_raw,cap_net_admin+eip {py}` (every program this interpreter runs "
            f"gets it: better a virtualenv made with `python3 -m venv --copies`, README); the tshark "
            f"engine needs "
            f"dumpcap's capabilities instead (`sudo dpkg-reconfigure wireshark-common` and "
            f"`sudo usermod -aG wireshark $USER`)")


def list_interfaces() -> list[str]:
    """Names of the network interfaces of this network namespace, sorted."""
    try:
        return sorted(n for _, n in socket.if_nameindex())
    except OSError:  # pragma: no cover - no netlink
        return sorted(p.name for p in Path("/sys/class/net").iterdir())


#: ``/sys/class/net/NAME/operstate`` values of an interface that is up but cannot pass packets
#: (RFC 2863 ifOperStatus: no carrier, its lower layer down — a veth whose peer is down —, absent)
_NO_CARRIER = ("down", "lowerlayerdown", "notpresent")


def interface_state(name: str) -> str:
    """What ``live --list-interfaces`` marks an interface ``name`` with (str): ``"down"`` when it
    is administratively down (``ip link set NAME down``: IFF_UP not set in
    ``/sys/class/net/NAME/flags``), ``"no carrier"`` when it is up but its ``operstate`` says it
    cannot pass packets (:data:`_NO_CARRIER`: a cable out, a veth whose peer is down), '' when it
    is up (``operstate`` ``up``, or ``unknown`` as loopback's) or its state cannot be read (no
    such file: another OS, or ``name`` unsafe as a path part)."""
    if not name or "/" in name or name in (".", ".."):
        return ""
    base = Path("/sys/class/net") / name
    try:
        flags = int((base / "flags").read_text().strip(), 16)
        oper = (base / "operstate").read_text().strip()
    except (OSError, ValueError):
        return ""
    if not flags & 0x1:     # IFF_UP
        return "down"
    return "no carrier" if oper in _NO_CARRIER else ""


def default_interface() -> str:
    """The interface ``live`` captures on without ``--interface``: :func:`default_interface_why`'s
    name."""
    return default_interface_why()[0]


def default_interface_why() -> tuple[str, str]:
    """(interface, why it is the default): the interface of the IPv4 default route
    (``/proc/net/route``; why ``"the default route"``), else of the IPv6 one (``"the IPv6 default
    route"``), else the first interface that is up and not loopback (``"no default route: the
    first interface up"``), else ``lo`` (``"no default route, no other interface up"``)."""
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) > 2 and parts[1] == "00000000" and int(parts[3], 16) & 1:
                return parts[0], "the default route"
    except (OSError, ValueError):
        pass
    try:
        for line in Path("/proc/net/ipv6_route").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 10 and parts[0] == "0" * 32 and parts[1] == "00" and parts[9] != "lo":
                return parts[9], "the IPv6 default route"
    except OSError:
        pass
    for name in list_interfaces():
        if name == "lo":
            continue
        try:
            if Path(f"/sys/class/net/{name}/operstate").read_text().strip() in ("up", "unknown"):
                return name, "no default route: the first interface up"
        except OSError:
            continue
    return "lo", "no default route, no other interface up"


def check_interface(name: str) -> None:
    """:raises EngineError: ``name`` is not an interface of this namespace (the message lists
    the available ones; for ``any``, Linux's every-interface pseudo-interface, it also says to
    run ``live`` once per interface or to capture with ``tcpdump -i any`` and analyse the file)."""
    names = list_interfaces()
    if name == "any" and name not in names:
        # (Linux's pseudo-interface of every interface, tcpdump -i any: a cooked capture whose
        # filter libpcap rewrites for the kernel; not captured here)
        raise EngineError("live captures one interface at a time: 'any' (every interface, as "
                          f"tcpdump -i any) is not supported; available: {', '.join(names) or 'none'}. "
                          "Run live once per interface, or capture every interface with "
                          "`sudo tcpdump -i any -w agent.pcap \"$(kscc-traffic rules --bpf --no-vlan)\"` "
                          "and run `kscc-traffic analyze agent.pcap` (cooked captures are read)")
    if name not in names:
        raise EngineError(f"unknown interface {name!r}; available: {', '.join(names) or 'none'} "
                          f"(see kscc-traffic live --list-interfaces)")


@dataclass
class Batch:
    """Frames read in one go. ``packets``: Wireshark's dissection of them as
    :class:`~kscc_traffic.capture.packets.Packets` (``frame`` = index in ``frames``) when the
    source dissects (tshark engine); None when the builtin decoder must do it."""

    frames: list = field(default_factory=list)
    packets: object = None


class Source:
    """A live capture: :meth:`start`, then :meth:`read` until :meth:`stop`/:meth:`close`.

    ``interface``: interface name; ``bpf``: libpcap filter expression (tcpdump syntax).
    """

    engine = ""

    def __init__(self, interface: str, bpf: str) -> None:
        self.interface = interface
        self.bpf = bpf

    def start(self, timeout: float = 10.0) -> None:
        """Open the capture; returns once packets are being captured.

        :raises EngineError: no permission, unknown interface, invalid filter, missing tools.
        """
        raise NotImplementedError

    def read(self, timeout: float) -> Batch:
        """Frames captured since the last call, waiting up to ``timeout`` seconds for the first."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop capturing; frames already captured can still be :meth:`read`."""

    def drain(self, timeout: float = 5.0) -> Batch:
        """After :meth:`stop`: every frame captured but not yet read (waits up to ``timeout``
        seconds for the capture to flush)."""
        return self.read(0)

    def stats(self) -> tuple[Optional[int], Optional[int]]:
        """(packets the kernel passed to the capture, packets it dropped), None when unknown."""
        return None, None

    def ended(self) -> Optional[str]:
        """None while capturing or after :meth:`stop`; once the capture has stopped by itself
        (its process exited, the interface went away) and every frame was read: why, one line."""
        return None

    def delivered_ns(self) -> Optional[int]:
        """Epoch ns before which every captured frame has been returned by :meth:`read`, so a
        silence up to then is real (the live session's clock); None: the wall clock (frames
        reach :meth:`read` as soon as the kernel has them)."""
        return None

    def close(self) -> None:
        """Release everything (sockets, child processes). Safe to call twice."""


# ------------------------------------------------------------------------------------ scapy
class ScapySource(Source):
    """Capture through scapy's ``L2ListenSocket`` (see the module docstring)."""

    engine = "scapy"

    def __init__(self, interface: str, bpf: str, snaplen: int = 262144) -> None:
        super().__init__(interface, bpf)
        self.snaplen = snaplen
        self.sock = None
        self.linktype = 1
        self.loopback = False
        self._received = 0
        self._dropped = 0
        self._lock = threading.Lock()

    def start(self, timeout: float = 10.0) -> None:
        check_interface(self.interface)
        try:
            import logging
            logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # "Unable to guess type"
            from scapy.arch.linux import L2ListenSocket
            from scapy.error import Scapy_Exception
        except ImportError as e:
            raise EngineError(f"the scapy engine needs scapy ({e}): {extra_hint('live')}")
        try:
            self.sock = L2ListenSocket(iface=self.interface, filter=self.bpf or None, promisc=True)
        except PermissionError:
            raise EngineError(permission_hint(self.interface)) from None
        except OSError as e:
            if e.errno in (errno.EPERM, errno.EACCES):
                raise EngineError(permission_hint(self.interface)) from None
            if e.errno in (errno.ENODEV, errno.ENXIO):
                check_interface(self.interface)
            raise EngineError(f"cannot capture on {self.interface}: {e.strerror or e}") from None
        except ImportError as e:
            raise EngineError(f"cannot compile the capture filter: libpcap is missing ({e}): "
                              f"sudo apt-get install libpcap0.8") from None
        except Scapy_Exception as e:
            msg = str(e).replace("Cannot set filter: ", "")
            raise EngineError(f"invalid capture filter {self.bpf!r}: {msg}") from None
        s = self.sock.ins
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        hatype = s.getsockname()[3]
        self.loopback = hatype == 772
        if hatype not in ARPHRD_TO_LINKTYPE:
            self.close()
            raise EngineError(f"{self.interface}: link type ARPHRD {hatype} is not supported by "
                              f"the scapy engine; try --engine tshark")
        self.linktype = ARPHRD_TO_LINKTYPE[hatype]
        self._stats()  # reset the kernel counters: count from here

    def _recv(self) -> Optional[Frame]:
        s = self.sock.ins
        data, anc, flags, addr = s.recvmsg(self.snaplen, 512, socket.MSG_DONTWAIT)
        if self.loopback and addr[2] == PACKET_OUTGOING:
            return None
        ts_ns = None
        wirelen = len(data)
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(cdata) >= 16:
                sec, nsec = struct.unpack("qq", cdata[:16])
                ts_ns = sec * 1_000_000_000 + nsec
            elif level == SOL_PACKET and typ == PACKET_AUXDATA and len(cdata) >= 20:
                status, length, snaplen, mac, net, tci, tpid = struct.unpack("IIIHHHH", cdata[:20])
                wirelen = length
                if self.linktype == 1 and (tci or status & TP_STATUS_VLAN_VALID) and len(data) >= 12:
                    tp = tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
                    data = data[:12] + struct.pack("!HH", tp, tci) + data[12:]
                    wirelen += 4
        if ts_ns is None:
            ts_ns = time.time_ns()
        return ts_ns, self.linktype, data, max(wirelen, len(data))

    def read(self, timeout: float) -> Batch:
        out: list = []
        if self.sock is None:
            return Batch(out)
        fd = self.sock.ins.fileno()
        r, _, _ = select.select([fd], [], [], max(timeout, 0))
        if not r:
            return Batch(out)
        deadline = time.monotonic() + 0.05
        while len(out) < 20000:
            try:
                fr = self._recv()
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.ENETDOWN:
                    break
                raise
            if fr is not None:
                out.append(fr)
            if time.monotonic() > deadline:
                break
        return Batch(out)

    def _stats(self) -> None:
        if self.sock is None:
            return
        try:
            p, d = struct.unpack("II", self.sock.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        except OSError:
            return
        with self._lock:
            self._received += p
            self._dropped += d

    def stats(self) -> tuple[Optional[int], Optional[int]]:
        self._stats()
        with self._lock:
            return self._received, self._dropped

    def stop(self) -> None:
        self._stats()

    def drain(self, timeout: float = 5.0) -> Batch:
        frames: list = []
        while True:
            b = self.read(0)
            if not b.frames:
                break
            frames += b.frames
        return Batch(frames)

    def close(self) -> None:
        if self.sock is not None:
            self._stats()
            try:
                self.sock.close()
            except Exception:
                pass
            self.sock = None


# ------------------------------------------------------------------------------------ tshark
_libc = None


def _child_setup() -> None:  # pragma: no cover - runs in the child between fork and exec
    """New process group (a terminal's Ctrl-C reaches only the parent, which stops us in
    order) and SIGTERM when the parent thread dies."""
    os.setpgid(0, 0)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


_DROP_RE = re.compile(r"Packets received/dropped on interface '?([^':]+)'?: (\d+)/(\d+)")
_LAYERS = "frame eth sll vlan ieee8021ad ip ipv6 tcp udp icmp icmpv6 data teredo teredo.auth teredo.orig vxlan"
#: pcapng packet block types (obsolete Packet, Simple Packet, Enhanced Packet)
_PACKET_BLOCKS = (2, 3, 6)
#: seconds dumpcap may hold a captured packet before writing it (libpcap's buffer timeout,
#: 250 ms in dumpcap, with room to spare): :meth:`TsharkSource.delivered_ns` stays this far behind
DUMPCAP_LAG_S = 1.0
#: dumpcap's stderr lines that say nothing about a failure
_NOISE = ("Capturing on", "File:", "Packets", "Running as user", "Please check to make sure",
          "See the User's Guide", "dumpcap: cap_set_proc()")


def _fionread(fd: int) -> int:
    """Bytes waiting in pipe ``fd`` (-1 when it cannot be asked)."""
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return -1


def json_packet(data: bytes) -> tuple[Optional[bytes], bytes]:
    """The first whole packet object in ``data`` (what ``tshark -T json`` printed so far) and
    what follows it; (None, data) while it is incomplete.

    A packet is whole as soon as its closing line (two spaces and ``}``) is there: inner
    objects are indented deeper and JSON strings hold no raw newline. pyshark's own reader
    waits for the ``,`` that tshark writes only when the next packet begins, so the last
    packet of a burst (a reply) stayed unread until more traffic came.
    """
    start = data.find(b"{")
    if start == -1:
        return None, data
    end = data.find(b"\n  }", start)
    if end == -1:
        return None, data
    end += 4
    return data[start:end], data[end:]


def dumpcap_error(lines: list[str], interface: str, bpf: str, status: Optional[int] = None) -> str:
    """The ``Error:`` text for a dumpcap that stopped before capturing, from its stderr
    ``lines`` and exit ``status``: the scapy engine's words for the same failure where there is
    one (no permission, invalid filter, interface gone), else dumpcap's own first line.

    :raises EngineError: the interface is not (any more) in this namespace.
    """
    text = " ".join(lines)
    low = text.lower()
    if ("permission" in low and "capture" in low) or "operation not permitted" in low:
        return permission_hint(interface)
    if "capture filter" in low:
        m = re.search(r"valid capture filter \((.*)\)\.?", text)
        detail = m.group(1) if m else text
        return (f"invalid capture filter {bpf!r}: Failed to compile filter expression {bpf!r} "
                f"({detail})")
    if "no such device" in low or "there is no device" in low:
        check_interface(interface)
    st = f" (dumpcap exited with status {status})" if status is not None else ""
    if "is not up" in low:
        return f"cannot capture on {interface}: Network is down{st}"
    return f"cannot capture on {interface}: {_first_said(lines)}{st}"


def _first_said(lines: list[str]) -> str:
    """dumpcap's first stderr line that is not progress or boilerplate, without ``dumpcap: ``."""
    for ln in lines:
        if ln and not ln.startswith(_NOISE):
            return ln[len("dumpcap: "):] if ln.startswith("dumpcap: ") else ln
    return "dumpcap stopped without saying why"


class TsharkSource(Source):
    """Capture through pyshark's ``LiveCapture`` (dumpcap | relay | tshark), see the module
    docstring.

    :raises EngineError: (from :meth:`start`) tshark/dumpcap or pyshark missing, no
        permission, unknown interface, invalid filter, dumpcap stopped before capturing, or it
        did not start within ``timeout`` seconds.
    """

    engine = "tshark"

    def __init__(self, interface: str, bpf: str) -> None:
        super().__init__(interface, bpf)
        self._q: "queue.Queue" = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._relay_thread: Optional[threading.Thread] = None
        self._ready = threading.Event()       # dumpcap wrote its first bytes, or it is over
        self._started = False                 # dumpcap wrote its first bytes
        self._done = threading.Event()
        self._procs: dict[str, object] = {}
        self._pids: dict[str, int] = {}
        self._stderr: list[str] = []          # dumpcap's and tshark's, in arrival order
        self._dumpcap_err: list[str] = []     # dumpcap's
        self._error: Optional[BaseException] = None
        self._loop = None
        self._received: Optional[int] = None
        self._dropped: Optional[int] = None
        self._stopping = False
        # the relay: packet blocks passed to tshark vs packets tshark printed (and queued)
        self._relay_lock = threading.Lock()
        self._relay_src = -1
        self._relayed = 0
        self._parsed = 0
        self._count_ok = True
        self._hdr = b""
        self._skip = 0
        self._caught_up = 0
        self._last_ts = 0

    # -- the worker thread --------------------------------------------------------------
    def _make_capture(self, loop):
        import asyncio
        import subprocess

        import pyshark
        from pyshark.tshark.output_parser.tshark_json import TsharkJsonParser
        from pyshark.tshark.tshark import get_process_path

        from ..engines.tshark import DECODE_AS, DISABLED, PREFS

        src = self
        prefs = {PREFS[i + 1].split(":", 1)[0]: PREFS[i + 1].split(":", 1)[1]
                 for i in range(0, len(PREFS), 2)}

        class _Parser(TsharkJsonParser):
            def _extract_packet_from_data(self, data, got_first_packet=True):
                return json_packet(data)

        class _Capture(pyshark.LiveCapture):
            def _verify_capture_parameters(self):  # we checked the interface ourselves
                pass

            def _setup_tshark_output_parser(self):
                return _Parser(self._get_tshark_version())

            async def _stderr_lines(self, name, stderr):
                while True:
                    line = await stderr.readline()
                    if not line:
                        break
                    text = line.decode("utf-8", "replace").strip()
                    if text:
                        self._last_error_line = text
                        src._on_stderr(name, text)

            def _stderr_task(self, name, stderr):
                self._stderr_handling_tasks.append(asyncio.ensure_future(self._stderr_lines(name, stderr)))

            async def _get_tshark_process(self, packet_count=None, stdin=None):
                # dumpcap -> (pipe) -> our relay -> (pipe) -> tshark; each pipe end is closed
                # in this process once a child has it (pyshark's own version keeps the write
                # end open here, so tshark never saw the end of a stopped dumpcap)
                d_read, d_write = os.pipe()
                t_read, t_write = os.pipe()
                try:
                    dparams = [get_process_path(process_name="dumpcap", tshark_path=self.tshark_path)]
                    dparams += self._get_dumpcap_parameters()
                    dumpcap = await asyncio.create_subprocess_exec(
                        *dparams, stdout=d_write, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                        preexec_fn=_child_setup)
                finally:
                    os.close(d_write)
                src._track("dumpcap", dumpcap)
                self._stderr_task("dumpcap", dumpcap.stderr)
                self._running_processes.add(dumpcap)
                tparams = [self._get_tshark_path(), "-l", "-n", "-T", "json"]
                tparams += self.get_parameters(packet_count=packet_count) + ["--no-duplicate-keys"]
                try:
                    tshark = await asyncio.create_subprocess_exec(
                        *tparams, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=t_read,
                        preexec_fn=_child_setup)
                except BaseException:
                    os.close(t_write)
                    os.close(d_read)
                    raise
                finally:
                    os.close(t_read)
                src._track("tshark", tshark)
                self._stderr_task("tshark", tshark.stderr)
                self._running_processes.add(tshark)
                src._start_relay(d_read, t_write)
                return tshark

            def _get_dumpcap_parameters(self):
                params = super()._get_dumpcap_parameters()
                return [p for p in params if p != "-q"]   # keep the final drop counts

        return _Capture(interface=self.interface, bpf_filter=self.bpf or None, use_json=True,
                        include_raw=True, eventloop=loop, tshark_path=self._tshark,
                        override_prefs=prefs, custom_parameters=["-j", _LAYERS, *DECODE_AS, *DISABLED])

    def _track(self, name: str, proc) -> None:
        self._procs[name] = proc
        self._pids[name] = proc.pid

    def _on_stderr(self, name: str, text: str) -> None:
        # dumpcap's progress ("Packets: N") ends with a carriage return, not a newline
        parts = [t.strip() for t in text.split("\r") if t.strip()]
        self._stderr += parts
        del self._stderr[:-50]
        if name == "dumpcap":
            self._dumpcap_err += [t for t in parts if not t.startswith("Packets: ")]
            del self._dumpcap_err[:-50]
        m = _DROP_RE.search(text)
        if m:
            self._received = int(m.group(2)) + int(m.group(3))
            self._dropped = int(m.group(3))

    # -- the relay (dumpcap -> tshark) ----------------------------------------------------
    def _start_relay(self, src: int, dst: int) -> None:
        self._relay_src = src
        self._relay_thread = threading.Thread(target=self._relay, args=(src, dst),
                                              name="kscc-dumpcap-relay", daemon=True)
        self._relay_thread.start()

    def _count_blocks(self, data: bytes) -> int:
        """Packet blocks that begin in ``data``, the next piece of dumpcap's pcapng stream
        (host byte order: dumpcap writes it on this machine). A block that makes no sense
        stops the counting (:meth:`delivered_ns` then relies on packet times only)."""
        n, i, size = 0, 0, len(data)
        while i < size and self._count_ok:
            if self._skip:
                k = min(self._skip, size - i)
                self._skip -= k
                i += k
                continue
            k = min(8 - len(self._hdr), size - i)
            self._hdr += data[i:i + k]
            i += k
            if len(self._hdr) < 8:
                break
            btype, blen = struct.unpack("=II", self._hdr)
            self._hdr = b""
            if blen < 12 or blen % 4:
                self._count_ok = False
                break
            n += btype in _PACKET_BLOCKS
            self._skip = blen - 8
        return n

    def _relay(self, src: int, dst: int) -> None:
        try:
            while True:
                try:
                    select.select([src], [], [])
                except InterruptedError:  # pragma: no cover - PEP 475 retries
                    continue
                with self._relay_lock:
                    try:
                        data = os.read(src, 1 << 16)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    self._relayed += self._count_blocks(data)
                    if not self._started:
                        self._started = True
                        self._ready.set()
                view = memoryview(data)
                while view:
                    view = view[os.write(dst, view):]
        except OSError:          # tshark went away (BrokenPipeError) or a closed fd
            pass
        finally:
            with self._relay_lock:
                self._relay_src = -1    # before the number can be reused
                for fd in (dst, src):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._ready.set()

    def _on_packet(self, pkt) -> None:
        from ..engines.tshark import _ts_ns, fields_from_json_layers
        frame = pkt.frame_info._all_fields
        layers = [("frame", frame)]
        for layer in pkt.layers:
            layers.append((layer.layer_name, layer._all_fields))
            for dup in getattr(layer, "duplicate_layers", ()) or ():
                layers.append((layer.layer_name, dup._all_fields))
        protos, f = fields_from_json_layers(layers)
        raw = pkt.get_raw_packet() if hasattr(pkt, "get_raw_packet") else b""
        ts = _ts_ns(str(frame.get("frame.time_epoch", "0")))
        wl = int(frame.get("frame.len", len(raw)) or len(raw))
        lt = WTAP_TO_LINKTYPE.get(int(frame.get("frame.encap_type", 1) or 1), 1)
        self._q.put(((ts, lt, raw, wl), protos, f))
        self._parsed += 1        # after the put: see delivered_ns

    def _run(self) -> None:
        import asyncio
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        cap = None
        try:
            cap = self._make_capture(loop)
            self._cap = cap
            loop.run_until_complete(cap.packets_from_tshark(self._on_packet, close_tshark=False))
        except BaseException as e:  # reported by start()/read()
            if not self._stopping:
                self._error = e
        finally:
            try:
                if cap is not None:
                    loop.run_until_complete(asyncio.wait_for(self._close_async(cap), 5))
            except BaseException:
                pass
            self._kill_all()
            if self._relay_thread is not None:
                self._relay_thread.join(3)
            try:
                loop.close()
            except Exception:
                pass
            self._done.set()
            self._ready.set()

    async def _close_async(self, cap) -> None:
        import asyncio
        for p in list(cap._running_processes):
            if p.returncode is None:
                try:
                    await asyncio.wait_for(p.wait(), 3)
                except asyncio.TimeoutError:
                    try:
                        p.kill()
                    except ProcessLookupError:
                        pass
                    await p.wait()
        cap._running_processes.clear()
        for t in cap._stderr_handling_tasks:
            try:
                await asyncio.wait_for(t, 2)
            except BaseException:
                pass

    def _kill_all(self) -> None:
        for name, pid in list(self._pids.items()):
            proc = self._procs.get(name)
            if proc is not None and getattr(proc, "returncode", None) is not None:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            except PermissionError:  # pragma: no cover
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass

    # -- the Source interface -----------------------------------------------------------
    def start(self, timeout: float = 15.0) -> None:
        from ..engines.tshark import INSTALL_HINT, find_tool
        self._tshark = find_tool("tshark")
        find_tool("dumpcap")
        try:
            import pyshark  # noqa: F401
        except ImportError as e:
            raise EngineError(f"the tshark engine needs pyshark ({e}): "
                              f"{extra_hint('tshark')}; and {INSTALL_HINT}")
        check_interface(self.interface)
        self._thread = threading.Thread(target=self._run, name="kscc-tshark", daemon=True)
        self._thread.start()
        in_time = self._ready.wait(timeout)
        if self._started:
            return
        if in_time:                      # dumpcap is over: let tshark and the stderr readers end
            self._thread.join(10)
        err = self._error
        lines = list(self._dumpcap_err)
        proc = self._procs.get("dumpcap")
        status = getattr(proc, "returncode", None)
        self.close()
        if not in_time:
            said = dumpcap_error(lines, self.interface, self.bpf) if lines else ""
            raise EngineError(f"dumpcap did not start capturing on {self.interface} within "
                              f"{timeout:g} s{': ' + said if said else ''}")
        if not lines and err is not None:
            raise EngineError(f"tshark capture failed: {type(err).__name__}: {err}")
        raise EngineError(dumpcap_error(lines, self.interface, self.bpf, status))

    def read(self, timeout: float) -> Batch:
        from ..engines.tshark import PacketBuilder
        items = []
        try:
            items.append(self._q.get(timeout=max(timeout, 0)) if timeout > 0 else self._q.get_nowait())
        except queue.Empty:
            return Batch([])
        while len(items) < 20000:
            try:
                items.append(self._q.get_nowait())
            except queue.Empty:
                break
        b = PacketBuilder()
        frames = []
        for i, (fr, protos, f) in enumerate(items):
            frames.append(fr)
            b.add(protos, f, frame=i, ts_ns=fr[0])
            if fr[0] > self._last_ts:
                self._last_ts = fr[0]
        return Batch(frames, b.packets())

    def ended(self) -> Optional[str]:
        """Why dumpcap | tshark stopped while capturing (what they said, their exit status)
        once every packet handed over so far was read; None while both run or when
        :meth:`stop` ended them. Either one's exit counts: a killed tshark leaves its own
        capture child holding its output open, so its output never ends by itself."""
        if self._stopping or not self._started or not self._q.empty():
            return None
        status = {n: getattr(p, "returncode", None) for n, p in self._procs.items()}
        if not self._done.is_set() and all(rc is None for rc in status.values()):
            return None
        why = _first_said(self._dumpcap_err)
        if why == _first_said([]):
            tshark = [t for t in self._stderr if t.startswith("tshark: ")]
            if tshark:
                why = tshark[-1]
            elif self._error is not None:
                why = f"{type(self._error).__name__}: {self._error}"
            else:
                why = "no message"
        exited = ", ".join(f"{n} exited with status {rc}" for n, rc in status.items() if rc is not None)
        return f"the capture on {self.interface} stopped by itself: {why}{' (' + exited + ')' if exited else ''}"

    def delivered_ns(self) -> Optional[int]:
        """The wall clock less :data:`DUMPCAP_LAG_S` at the last call that found the pipeline
        empty — dumpcap's pipe read out, as many packets out of tshark as blocks went in, all
        of them returned by :meth:`read` — else the newest packet time returned (packets come
        in capture order): never a time whose packets are still inside dumpcap | tshark."""
        now = time.time_ns()
        parsed = self._parsed           # before the queue is looked at (put, then counted)
        with self._relay_lock:
            src = self._relay_src
            idle = (self._started and self._count_ok and self._relayed == parsed
                    and (src < 0 or _fionread(src) == 0))
        if idle and self._q.empty():
            self._caught_up = max(self._caught_up, now - int(DUMPCAP_LAG_S * 1e9))
        return max(self._caught_up, self._last_ts)

    def stop(self) -> None:
        self._stopping = True
        pid = self._pids.get("dumpcap")
        proc = self._procs.get("dumpcap")
        if pid and (proc is None or getattr(proc, "returncode", None) is None):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def drain(self, timeout: float = 5.0) -> Batch:
        if self._thread is not None:
            self._thread.join(timeout)
        if self._thread is not None and self._thread.is_alive():
            self._kill_all()
            self._thread.join(3)
        frames: list = []
        while True:
            b = self.read(0)
            if not b.frames:
                break
            frames.append(b)
        if not frames:
            return Batch([])
        if len(frames) == 1:
            return frames[0]
        # several chunks: rebuild one batch with consecutive frame numbers
        out = Batch([])
        import numpy as np
        from ..capture.packets import Packets
        cols, bufs, off, base = {}, [], 0, 0
        for b in frames:
            p = b.packets
            c = dict(p.cols)
            c["frame"] = c["frame"] + base
            c["pl_off"] = np.where(c["pl_off"] >= 0, c["pl_off"] + off, -1)
            for k, v in c.items():
                cols.setdefault(k, []).append(v)
            bufs.append(bytes(p.buf))
            off += len(p.buf)
            base += len(b.frames)
            out.frames += b.frames
        out.packets = Packets(b"".join(bufs), {k: np.concatenate(v) for k, v in cols.items()})
        return out

    def stats(self) -> tuple[Optional[int], Optional[int]]:
        return self._received, self._dropped

    def close(self) -> None:
        self.stop()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(5)
            if self._thread.is_alive():
                self._kill_all()
                self._thread.join(3)
        self._kill_all()


def open_source(engine: str, interface: str, bpf: str) -> Source:
    """A not yet started source for ``engine`` (``scapy`` or ``tshark``).

    :raises EngineError: unknown engine.
    """
    if engine == "scapy":
        return ScapySource(interface, bpf)
    if engine == "tshark":
        return TsharkSource(interface, bpf)
    raise EngineError(f"unknown engine {engine!r} (choose scapy or tshark)")
