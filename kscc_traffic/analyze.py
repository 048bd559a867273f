"""The whole pipeline: capture file(s) -> classified flow table."""
from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .capture.decode import decode
from .capture.files import read_frames
from .capture.stats import ReadStats
from .errors import CaptureError, CaptureWarning
from .classify import CLASS_COLUMNS, classify
from .flows import FLOW_COLUMNS, build_flows
from .inspect import APP_COLUMNS, DnsAnswers, inspect_flows
from .names import NAME_COLUMNS, assign_names
from .rules import RuleSet, load_rules
from .unreachable import attach, find_errors

#: every column of the table :func:`analyze` returns: name -> (dtype, unit, meaning)
COLUMNS: dict[str, tuple[str, str, str]] = {
    **FLOW_COLUMNS, **APP_COLUMNS, **NAME_COLUMNS, **CLASS_COLUMNS,
    "capture": ("object", "", "file name of the capture the flow was read from"),
}

WELL_KNOWN_LIMIT = 1024


@dataclass
class Analysis:
    """Result of analysing captures: the flow table, reader statistics per capture."""

    flows: pd.DataFrame
    stats: dict[str, ReadStats] = field(default_factory=dict)
    duplicates: int = 0

    @property
    def warnings(self) -> list[str]:
        return [w for s in self.stats.values() for w in s.warnings]


def server_port_fn(rules: RuleSet):
    """``f(proto, port) -> bool array``: the port is documented by a rule or is well known."""
    ranges = [(6 if r.transport == "tcp" else 17, r.port_lo, r.port_hi) for r in rules.rules]

    def server_port(proto: np.ndarray, port: np.ndarray) -> np.ndarray:
        out = (port >= 0) & (port < WELL_KNOWN_LIMIT)
        for p, lo, hi in ranges:
            out |= (proto == p) & (port >= lo) & (port <= hi)
        return out

    return server_port


def analyze_packets(packets, rules: RuleSet, name: str = "", *, prior_answers: DnsAnswers | None = None,
                    answers_out: DnsAnswers | None = None) -> tuple[pd.DataFrame, int]:
    """Decoded packets -> classified flow table (columns: :data:`COLUMNS`) and the number of
    duplicated frames dropped.

    :param prior_answers: DNS answers seen before these packets (e.g. by a live capture that
        already evicted the DNS flows); used for names together with the packets' own answers.
    :param answers_out: when given, the DNS answers found in these packets are appended to it.
    """
    errors = find_errors(packets)
    exclude = np.zeros(len(packets), bool)
    exclude[[e.row for e in errors]] = True
    ft = build_flows(packets, server_port_fn(rules), exclude=exclude, seed=name)
    flows, answers = inspect_flows(ft)
    flows, unmatched = attach(flows, errors)
    if unmatched:
        # errors quoting a flow we never saw stay visible as ICMP flows of their own
        only = np.ones(len(packets), bool)
        only[[e.row for e in unmatched]] = False
        extra = build_flows(packets, exclude=only, seed=name + "#icmp").flows
        flows = pd.concat([flows, extra], ignore_index=True)
        flows = flows.sort_values("ts_ns", kind="stable").reset_index(drop=True)
    if answers_out is not None:
        _extend_answers(answers_out, answers)
    if prior_answers is not None and prior_answers.address:
        merged = DnsAnswers()
        _extend_answers(merged, prior_answers)
        _extend_answers(merged, answers)
        answers = merged
    flows = assign_names(flows, answers)
    flows = classify(flows, rules)
    flows["capture"] = name
    return _schema(flows), ft.duplicates


def _extend_answers(dst: DnsAnswers, src: DnsAnswers) -> None:
    dst.ts_ns.extend(src.ts_ns)
    dst.client.extend(src.client)
    dst.address.extend(src.address)
    dst.name.extend(src.name)


def _schema(flows: pd.DataFrame) -> pd.DataFrame:
    for k, (dtype, _, _) in COLUMNS.items():
        if k not in flows:
            flows[k] = pd.Series(dtype=dtype) if len(flows) == 0 else ("" if dtype == "object" else 0)
        if dtype == "object":
            flows[k] = flows[k].fillna("").astype(object)
        else:
            flows[k] = flows[k].astype(dtype)
    return flows[list(COLUMNS)]


#: first bytes of the files we read: pcap (µs, ns, both orders, "modified"), pcapng, gzip
_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
           b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34", b"\x0a\x0d\x0d\x0a", b"\x1f\x8b")


def _check_source(path) -> None:
    """Refuse what is not a capture before reading it whole: a missing path, a directory, a FIFO
    or device (``/dev/urandom`` would never end), or a file whose first bytes are no capture magic.

    :raises CaptureError: with a one-line message naming the file.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise CaptureError(f"{path}: no such file") from None
    except OSError as e:
        raise CaptureError(f"{path}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise CaptureError(f"{path}: is a directory, not a capture file")
    if not stat.S_ISREG(st.st_mode):
        raise CaptureError(f"{path}: not a regular file (a pipe or device); save the capture to a file first")
    try:
        with open(p, "rb") as fh:
            head = fh.read(64)
    except OSError as e:
        raise CaptureError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(head) >= 4 and not any(head.startswith(m) for m in _MAGICS):
        try:
            read_frames(head)  # raises UnsupportedFormat with the magic seen
        except CaptureError as e:
            raise type(e)(str(e).replace("<bytes>", str(path), 1)) from None
        raise CaptureError(f"{path}: not a pcap or pcapng file")


def analyze_file(path: str | os.PathLike, rules: RuleSet | None = None, engine: str = "builtin") -> Analysis:
    """Analyse one capture file.

    :param engine: ``builtin`` (default: our reader and decoder) or ``tshark`` (Wireshark's
        dissectors through ``tshark``, :mod:`kscc_traffic.engines.tshark`); both feed the same
        flow/inspection/classification stages.
    :raises kscc_traffic.errors.CaptureError: the file is missing, not a capture, or its header is
        cut (damage after the header only adds warnings to ``Analysis.stats``).
    :raises kscc_traffic.errors.EngineError: ``engine`` is unknown, or tshark is not installed.
    """
    rules = rules or load_rules()
    _check_source(path)
    if engine == "tshark":
        from .engines.tshark import read_packets
        packets = read_packets(path)
    elif engine == "builtin":
        frames = read_frames(path)
        packets = decode(frames)
    else:
        from .errors import EngineError
        raise EngineError(f"unknown engine {engine!r} (choose builtin or tshark)")
    name = Path(path).name
    flows, dups = analyze_packets(packets, rules, name)
    stats = packets.stats
    if dups:
        stats.warn(f"{name}: {dups} duplicated frame{'s' if dups != 1 else ''} counted once")
    return Analysis(flows, {str(path): stats}, dups)


def analyze_files(paths, rules: RuleSet | None = None, engine: str = "builtin") -> Analysis:
    """Analyse several captures; their flows are concatenated (column ``capture`` names each).
    ``engine``: as for :func:`analyze_file`."""
    rules = rules or load_rules()
    parts, stats, dups = [], {}, 0
    for p in paths:
        a = analyze_file(p, rules, engine)
        parts.append(a.flows)
        stats.update(a.stats)
        dups += a.duplicates
    flows = pd.concat(parts, ignore_index=True) if parts else _schema(pd.DataFrame())
    return Analysis(flows, stats, dups)


def analyze(path: str | os.PathLike | list, rules: str | os.PathLike | RuleSet | None = None) -> pd.DataFrame:
    """Analyse capture(s) and return the classified flow table.

    :param path: a pcap/pcapng file, or a list of them.
    :param rules: a rules file, a loaded :class:`RuleSet`, or None for the bundled KSC Cloud rules.
    :returns: DataFrame, one row per flow, columns :data:`COLUMNS` (Zeek conn.log names: ``ts``
        float epoch seconds, ``duration`` seconds, ``*_bytes`` bytes, ``*_pkts`` packets; plus
        ``server_name``, ``name_source``, ``purpose``, ``verdict``, ``reason``…).
    :raises kscc_traffic.errors.CaptureError: a file cannot be read at all.
    :raises kscc_traffic.errors.RulesError: the rules file is invalid.
    Damage after a file's header is not an error: what was skipped is reported as one
    :class:`kscc_traffic.errors.CaptureWarning` per line (``analyze_files(...).stats`` has the counts).
    """
    rs = rules if isinstance(rules, RuleSet) else load_rules(rules)
    paths = path if isinstance(path, (list, tuple)) else [path]
    result = analyze_files(paths, rs)
    for line in result.warnings:
        warnings.warn(line, CaptureWarning, stacklevel=2)
    return result.flows
