"""The ``kscc-traffic`` command line. Thin: each command calls the library once and maps our
exceptions to exit codes here, and only here.

Exit status: 0 nothing blocked or unexpected; 1 something is (or another ``--fail-on`` condition
holds: ``no-ksc``, no KSC agent traffic); 2 the input is unusable (missing file, not a capture, bad
rules file) — with a one-line ``Error: …`` on stderr, never a traceback.
"""
from __future__ import annotations

import os
import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional

import typer

from . import _startup
from .errors import KsccTrafficError, TemporaryFolderError
from .text import escape_terminal, path_text

if TYPE_CHECKING:   # (rich is imported where something is printed with it: :class:`_ErrConsole`)
    from rich.console import Console

def _quiet_help(cmd, ctx) -> None:
    """Show ``--help`` of ``cmd`` (a click command, with ``ctx``'s help option names) without a
    value placeholder: a flag, not ``--help <bool>`` (newcomer 29 F10)."""
    opt = cmd.get_help_option(ctx)
    if opt is not None:
        opt.metavar = ""


class _Group(typer.core.TyperGroup):
    """The command group: its ``--help`` and each command's shown as a flag (:func:`_quiet_help`)."""

    def get_help_option(self, ctx):
        """The help option, without a value placeholder."""
        opt = super().get_help_option(ctx)
        if opt is not None:
            opt.metavar = ""
        return opt

    def get_command(self, ctx, cmd_name):
        """The command ``cmd_name`` (None: no such command), its help option without a placeholder."""
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            _quiet_help(cmd, ctx)
        return cmd


# markdown: the help's paragraphs are reflowed to the terminal (docstrings keep their line breaks
# in rich mode); usage errors are one line of ours (:func:`main`), not rich's box
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="markdown", cls=_Group,
                  help="Check captured traffic against the ports KSC Cloud Console documents.")


class _ErrConsole:
    """The rich console on stderr (``Error:``/``Warning:`` lines, the progress bar), made on first
    use: rich costs ~20 ms of start-up that a JSON Lines or CSV report written without a word
    never needs. Attributes are the console's."""

    _console = None

    def __getattr__(self, name: str):
        console = _ErrConsole._console
        if console is None:
            from rich.console import Console
            # emoji off: rich would turn ':x:' in a file name into an emoji (markup is off per print)
            console = _ErrConsole._console = Console(stderr=True, highlight=False, emoji=False)
        return getattr(console, name)


err = _ErrConsole()


def _print_version(value: bool) -> None:
    if value:
        from . import __version__
        from .compiled import summary
        typer.echo(f"kscc-traffic {__version__}\n{summary()}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       metavar="", help="Print the version and how many compiled parts are built, and exit.")) -> None:
    """Check captured traffic against the ports KSC Cloud Console documents."""
    from .compiled import stale_line
    line = stale_line()     # (a source tree whose C changed since its build: git pull, an edit)
    if line:
        _say("Warning", line)

EXIT_OK, EXIT_FLAGGED, EXIT_UNUSABLE = 0, 1, 2
#: the reader of standard output went away (``| head``): what a shell reports for a program
#: stopped by SIGPIPE (128 + 13), as ``cat`` or ``tshark`` would give
EXIT_PIPE_CLOSED = 141


class Format(str, Enum):
    """``--format`` of analyze and report: a rich table on the terminal, JSON Lines (one object
    per flow) or CSV (one row per flow; both with the flow table's columns, docs/flow-table.md)."""
    table = "table"
    jsonl = "jsonl"
    csv = "csv"


#: ``--fail-on``, one option object for analyze, report and live
_FAIL_ON_HELP = ("exit status 1 when (repeatable, or a comma list; any one that holds fails): flagged, a flow is "
                 "blocked or unexpected (the default); blocked, a flow is blocked (unexpected flows, such as a "
                 "browser's HTTPS to other hosts on 443, cleartext on a TLS port (not_tls) or a name outside the "
                 "host mask, then give 0); no-ksc, no flow is KSC agent traffic (the report's 'No KSC agent "
                 "traffic' headline, or nothing captured: the wrong machine or the wrong time), over all the "
                 "captures given. Without KSC agent traffic in the captures, blocked and unexpected flows are other "
                 "programs' and fail nothing (given --fail-on, a Note: line says so). E.g. --fail-on flagged,no-ksc")


def _fail_on_option(live: bool = False):
    """The ``--fail-on`` option (:data:`_FAIL_ON_HELP`); ``live``: said of the capture made, not of
    captures given (newcomer s55 #6)."""
    text = _FAIL_ON_HELP.replace("over all the captures given", "over the whole capture") if live else _FAIL_ON_HELP
    return typer.Option([], "--fail-on", metavar="WHAT[,…]", help=text)


def _fail_on(given: List[str]) -> frozenset:
    """The conditions of ``--fail-on`` (each given any number of times, each value a comma list;
    :func:`kscc_traffic.output.fail_on_set`), ``{"flagged"}`` when none is given; an unknown
    value is a usage error (``Error: Invalid value for '--fail-on': …``, the valid values
    listed; status 2)."""
    from .output import FAIL_ON_CHOICES, fail_on_set
    out = fail_on_set(given)
    if given and not out:
        raise _click_exceptions().BadParameter(f"give one or more of: {', '.join(FAIL_ON_CHOICES)}",
                                               param_hint="'--fail-on'")
    bad = sorted(out - set(FAIL_ON_CHOICES))
    if bad:
        raise _click_exceptions().BadParameter(
            f"unknown condition {', '.join(repr(escape_terminal(b)) for b in bad)}; valid: {', '.join(FAIL_ON_CHOICES)}",
            param_hint="'--fail-on'")
    chosen = FailOn(out or {"flagged"})
    chosen.explicit = bool(given)
    return chosen


class FailOn(frozenset):
    """The ``--fail-on`` conditions (a frozenset of names) and whether the user gave them
    (``explicit``; False: the default ``{"flagged"}``)."""
    explicit = False


#: the stderr line of a run given ``--fail-on`` whose flagged flows are none of them KSC agent
#: traffic: they don't count, the exit status is 0 (:func:`kscc_traffic.output.fails`)
IGNORED_LINE = ("{verdicts} flows in {what}, but no flow is KSC agent traffic (none goes to a Kaspersky name or "
                "a KSC-only port): they are other programs' and do not fail the run: exit status 0 "
                "(--fail-on no-ksc fails a run without KSC agent traffic)")
#: the stderr line of a run that ends with status 1 because no flow is KSC agent traffic
#: (``--fail-on no-ksc``): said also when the report goes to a file (JSON Lines, CSV, HTML)
NO_KSC_LINE = ("no KSC agent traffic: no flow {what} goes to a Kaspersky name or a KSC-only port "
               "(captured on the wrong machine, or at the wrong time?): exit status 1 (--fail-on no-ksc)")


#: the stderr line of a run that ends with status 1 under the default ``--fail-on`` (flagged) for
#: unexpected flows alone, none blocked: what gates on blocked flows only (newcomer s58 #6: exit status
#: 1 beside advice such as "nothing to change for the Cloud Console")
UNEXPECTED_ONLY_LINE = ("exit status 1 for unexpected flows, none blocked: traffic other than the port page documents, "
                        "which may need a change or not (the report's What to change and Nothing to change say which; "
                        "a web server or proxy answering the agent in cleartext where TLS is documented is unexpected "
                        "too); --fail-on sets which verdicts fail the run")


def _exit_status(verdicts, fail_on: frozenset, ksc: bool, captures: int = 1) -> int:
    """The run's exit status from its flagged ``verdicts``
    (:func:`kscc_traffic.output.flagged_verdicts`), the ``--fail-on`` conditions and whether a
    flow is KSC agent traffic (``ksc``, over all ``captures``): :data:`EXIT_FLAGGED` or
    :data:`EXIT_OK`. When ``no-ksc`` is what fails the run, one ``Warning:`` line on stderr
    (:data:`NO_KSC_LINE`) says so; when unexpected flows alone fail it under the default
    ``--fail-on``, one ``Note:`` line (:data:`UNEXPECTED_ONLY_LINE`)."""
    from .output import FAIL_ON, NO_KSC, fails
    failed = fails(verdicts, fail_on, ksc)
    if failed and not ksc and NO_KSC in fail_on:
        _say("Warning", NO_KSC_LINE.format(what="in the capture" if captures <= 1 else "in these captures"))
    elif failed and ksc and not getattr(fail_on, "explicit", False) and "unexpected" in verdicts \
            and "blocked" not in verdicts:
        _say("Note", UNEXPECTED_ONLY_LINE)
    elif not failed and not ksc and getattr(fail_on, "explicit", False) and fails(verdicts, fail_on, True):
        # (`--fail-on blocked` on a capture whose blocked flows are all other programs': a script
        # asking "is anything blocked?" must hear why the answer is 0; newcomer 31 F2)
        ignored = sorted(v for w in fail_on if w in FAIL_ON for v in FAIL_ON[w] if v in verdicts)
        _say("Note", IGNORED_LINE.format(verdicts=" and ".join(ignored),
                                         what="the capture" if captures <= 1 else "these captures"))
    return EXIT_FLAGGED if failed else EXIT_OK


class FileEngine(str, Enum):
    """``--engine`` for capture files: the built-in columnar reader, or tshark's fields (slower;
    for what the built-in reader cannot read, :mod:`kscc_traffic.engines.tshark`)."""
    builtin = "builtin"
    tshark = "tshark"


class FileSetMode(str, Enum):
    """How several files given at once are read: ``join`` as one capture (a ring buffer's files),
    ``separate`` each on its own, ``auto`` joined when they are one file set
    (:mod:`kscc_traffic.capture.filesets`)."""
    auto = "auto"
    join = "join"
    separate = "separate"


#: the CAPTURE argument of analyze and report ({command}: the command's own example)
_CAPTURE_TEXT = ("pcap or pcapng files (also compressed: gz, xz, bz2, zst, lz4), or folders: the capture "
                 "files in each (not its subfolders); a ring buffer's or file set's files are one capture "
                 "(--file-set); - alone: standard input (tcpdump -w - … | kscc-traffic {command})")
_CAPTURE_HELP = _CAPTURE_TEXT.format(command="analyze -")
#: ... report's (newcomer s55 #6: it showed analyze's example)
_REPORT_CAPTURE_HELP = _CAPTURE_TEXT.format(command="report - --html report.html")

#: the --file-set option of analyze and report
_FILE_SET_HELP = ("auto: the files of one ring buffer or file set (dumpcap -b: x_00001_20261130101500.pcapng…; "
                  "tcpdump -C: x.pcap, x.pcap1…) are read one after the other as one capture; join: all "
                  "captures given are one, in time order (files split by another tool); separate: each file "
                  "on its own")


class LiveEngine(str, Enum):
    """``live --engine``: capture with scapy (libpcap) or with a tshark/dumpcap process
    (:mod:`kscc_traffic.live.sources`)."""
    scapy = "scapy"
    tshark = "tshark"


_REPORT_CONSOLE = []      # the class of :func:`_report_console_class`, once made


def _report_console_class() -> type:
    """``_ReportConsole``, a rich console whose failed writes reach the caller: rich's own
    :meth:`~rich.console.Console.on_broken_pipe` ends the program with status 1 when the reader
    of the output goes away, so ``analyze … | head`` (table) would end as "something flagged";
    here the :class:`BrokenPipeError` is raised again (the console goes quiet first) and the
    command ends with :data:`EXIT_PIPE_CLOSED`, as for csv and jsonl. Made on first use (rich is
    imported only by a command that prints with it)."""
    if not _REPORT_CONSOLE:
        from rich.console import Console

        class _ReportConsole(Console):
            __doc__ = _report_console_class.__doc__

            def on_broken_pipe(self) -> None:
                self.quiet = True
                raise BrokenPipeError(32, "Broken pipe")

        _REPORT_CONSOLE.append(_ReportConsole)
    return _REPORT_CONSOLE[0]


#: the width (columns) of tables written to a pipe or file when nothing says one (``COLUMNS``)
PIPE_WIDTH = 200


def _columns_env() -> Optional[int]:
    """The width the ``COLUMNS`` environment variable gives (a positive whole number), else None."""
    text = os.environ.get("COLUMNS", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def _console(file=None) -> Console:
    """A console for reports: the width ``COLUMNS`` gives when it is set (``COLUMNS=80
    kscc-traffic analyze … | less``), else the terminal's width on a terminal, and
    :data:`PIPE_WIDTH` columns in a pipe or file (rich's default of 80 would fold every table).
    A closed pipe raises :class:`BrokenPipeError` (:func:`_report_console_class`)."""
    stream = file or sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    width = _columns_env() or (None if tty else PIPE_WIDTH)
    return _report_console_class()(file=file, width=width, emoji=False)


def _emit(flows, ruleset, format: "Format", output: Optional[Path], capture_filter: Optional[str] = None,
          hint: str = "", fail_on: frozenset = frozenset({"flagged"})) -> None:
    """Write the final report (table, JSONL or CSV; to ``output`` or stdout) and exit with the
    verdict's status (:func:`_exit_status` under the ``--fail-on`` conditions ``fail_on``: by default 1
    when a flow is blocked or unexpected, else 0). ``capture_filter``: a
    custom filter the flows were captured with (the table says what it left out). Ctrl-C or
    SIGTERM while writing: the ``Interrupted:`` line of :func:`_interrupted` (``hint`` added to
    it) and :data:`EXIT_INTERRUPTED`."""
    from .output import FlowSink

    target = _open_output(output)
    out = target.stream if target else sys.stdout
    sink = None
    try:
        sink = FlowSink(format.value, out, ruleset, lambda o: _console(o if output else None), capture_filter)
        sink.add(flows)
        sink.close()
        if target:
            target.commit()
        else:
            out.flush()
    except OSError as e:
        raise _write_failed(e, output)
    except KeyboardInterrupt:
        raise _interrupted(target, sink if sink is not None else _NoRows(format.value), hint)
    finally:
        if target:
            target.discard()
    from .output import flagged_verdicts
    from .report import any_ksc
    raise typer.Exit(_exit_status(flagged_verdicts(flows), fail_on, any_ksc(flows, ruleset)))


def _write_failed(e: OSError, output: Optional[Path]) -> "typer.Exit":
    """The exit for a failed write of the report. Standard output closed by its reader (``| head``,
    a pager quit early) ends the run quietly with :data:`EXIT_PIPE_CLOSED`, as a Unix filter
    does; any other failure is an ``Error:`` line and status 2."""
    if isinstance(e, BrokenPipeError):   # (standard output, or --output /dev/stdout, a fifo)
        if output is None:
            try:  # what is still buffered must not fail again when Python exits
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
        return typer.Exit(EXIT_PIPE_CLOSED)
    return _fail(f"{path_text(output) if output else 'standard output'}: cannot write: {e.strerror or e}")


def _check_output(output: Optional[Path], inputs=(), option: str = "--output", role: str = "an input") -> None:
    """Fail before any work when ``output`` cannot be written (missing folder, a directory) or
    is one of the ``inputs`` (a capture or rules file, also through a link or another spelling
    of its path): opening it for writing would empty that file before it is read."""
    if output is None:
        return
    parent = output.absolute().parent
    try:
        is_dir = output.is_dir()
        folder = parent.exists()
        folder_is_dir = parent.is_dir()
    except OSError as e:                  # a name too long (ENAMETOOLONG), a loop of links…
        raise _fail(f"{path_text(output)}: {e.strerror or e}")
    if is_dir and str(output) == ".":     # (typer makes an empty name the current folder)
        raise _fail(f"{option} . is the current folder (an empty name, from an unset shell variable?, "
                    f"is read so too); give a file name for {option}")
    if is_dir:
        raise _fail(f"{path_text(output)}: is a directory; give a file name for {option}")
    if not folder:
        raise _fail(f"{path_text(output)}: folder {path_text(parent)} does not exist")
    if not folder_is_dir:
        raise _fail(f"{path_text(output)}: {path_text(parent)} is not a folder")
    for path in inputs:
        if path is None:
            continue
        try:
            same = os.path.samefile(output, path)
        except OSError:                     # one of them does not exist (yet): the same path?
            same = os.path.realpath(output) == os.path.realpath(path)
        if same:
            raise _fail(f"{path_text(output)}: is also {role} ({path_text(path)}); give another "
                        f"file name for {option}, writing there would destroy {'it' if role != 'an input' else 'the input'}")


#: the format a report file's extension names (what a reader of the file expects), for
#: :func:`_extension_warning`
HTML_HOW = "kscc-traffic report CAPTURE --html FILE"   # (how the HTML report is written, in hints)
EXTENSION_FORMATS = {".csv": "csv", ".json": "jsonl", ".jsonl": "jsonl", ".ndjson": "jsonl", ".html": "html",
                     ".htm": "html", ".txt": "table"}


def _extension_warning(output: Optional[Path], fmt: str, option: str = "--output") -> None:
    """A ``Warning:`` line (not an error: the file is written as asked) when ``output``'s
    extension names another format than the one written (``-f jsonl -o x.csv``:
    :data:`EXTENSION_FORMATS`), saying what the file will hold and what its name suggests
    (newcomer 32 F7). Nothing for an extension of no format or for standard output."""
    if output is None:
        return
    named = EXTENSION_FORMATS.get(output.suffix.lower())
    if named is None or named == fmt:
        return
    how = {"html": f"the HTML report is `{HTML_HOW}`",
           "table": "--format table writes the text report"}.get(named, f"--format {named} writes that")
    wrote = "the HTML report" if fmt == "html" else f"{fmt} (--format {fmt})"
    _say("Warning", f"{path_text(output)}: its extension {output.suffix} names {named}, but {option} gets "
                    f"{wrote}; {how}")


def _load_rules(path: Optional[Path]):
    """The rules of ``--rules`` (None: the bundled ones), or an ``Error:`` line and status 2 for
    a file that cannot be used, and for a directory (the option takes one file)."""
    from .rules import load_rules

    try:
        is_dir = path is not None and path.is_dir()
    except OSError as e:                  # a name too long (ENAMETOOLONG), a loop of links…
        raise _fail(f"{path_text(path)}: cannot read: {e.strerror or e}")
    if is_dir:
        raise _fail(f"{path_text(path)}: is a directory; --rules takes one rules file (.toml)")
    try:
        return load_rules(path)
    except KsccTrafficError as e:
        raise _fail(str(e))


def _expand_patterns(captures: List[str]) -> List[str]:
    """``captures`` with each argument that names no file but is a wildcard pattern (``*``, ``?``,
    ``[…]``) replaced by the files it matches, in name order: Windows' cmd and PowerShell pass
    ``*.pcap`` to the program as it is, where a POSIX shell expands it (newcomer 35 F6: ``Error:
    *.pcap: no such file``). A pattern matching nothing stays as given (its ``no such file``
    error or warning then); an existing file whose name holds such characters is that file."""
    import glob

    out: List[str] = []
    for c in captures:
        if c and glob.has_magic(c) and not os.path.lexists(c):
            found = sorted(glob.glob(c))
            if found:
                out.extend(found)
                continue
        out.append(c)
    return out


def _fail_if_missing(captures: List[str], lenient: bool) -> None:
    """An ``Error: <capture>: no such file`` line and status 2 at once, before the heavy modules
    load (pandas and the classifier: ~2 s of CPU for nothing; newcomer 32 F3), when the one capture
    given does not exist: the line :func:`kscc_traffic.analyze.check_capture` gives it later
    (same path text). Nothing is checked with ``--lenient`` (a ``Warning: skipped …`` line
    then), for ``-`` or standard input, or among several captures: a missing file there may be
    one of a file set's (a warning; :func:`_readable_units`), and which error comes first follows
    the captures' units. Any other problem (a folder, no permission, not a capture) is left to the
    usual checks."""
    if lenient or len(captures) != 1 or captures[0] in ("", "-", "/dev/stdin"):
        return
    try:
        os.stat(captures[0])
    except FileNotFoundError:
        # (a name with * or ?: a pattern nothing matches; one with brackets alone, ESC [ 31 m, is a name)
        what = "no such file, and no file matches it" if any(c in captures[0] for c in "*?") else "no such file"
        raise _fail(f"{path_text(Path(captures[0]))}: {what}") from None
    except (OSError, ValueError):       # (said as usual: a name too long, a NUL byte…)
        return


def _fail(message: str) -> "typer.Exit":
    _say("Error", message)
    return typer.Exit(EXIT_UNUSABLE)


def _say(kind: str, message: str) -> None:
    """One ``Error:``/``Warning:`` line on stderr: paths in messages are escaped where they are
    made (:func:`kscc_traffic.text.path_text`, capture names); whatever else came in (an
    exception's text, tshark's words) has its control characters shown as ``\\xNN`` text here,
    so the line stays one line and cannot drive the terminal."""
    global _interrupted_said
    if kind == "Interrupted":
        _interrupted_said = True
    err.print(f"{kind}: {escape_terminal(message)}", markup=False, soft_wrap=True)


#: an ``Interrupted:`` line was written in this run (:func:`main` writes a bare one otherwise)
_interrupted_said = False


@app.command()
def analyze(
    captures: List[str] = typer.Argument(..., metavar="CAPTURE", help=_CAPTURE_HELP),
    format: Format = typer.Option(Format.table, "--format", "-f", metavar="FORMAT", help="table, jsonl or csv"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE",
                                          help="write here instead of stdout"),
    rules: Optional[Path] = typer.Option(None, "--rules", metavar="FILE",
                                         help="rules file (default: bundled KSC Cloud rules)"),
    lenient: bool = typer.Option(False, "--lenient", metavar="",
                                 help="skip captures that cannot be read at all (warning) instead of exit 2"),
    engine: FileEngine = typer.Option(FileEngine.builtin, "--engine", metavar="ENGINE",
                                      help="builtin (default) or tshark (Wireshark's dissectors)"),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, metavar="N",
                                       help="processes at once (default: one per core, one per capture): captures analysed "
                                            "in parallel; one capture with 2: a second process classifies "
                                            "its flows while it is read (~10 % faster, ~100 MiB more; more with many "
                                            "small flows); each process takes the memory of one capture"),
    file_set: FileSetMode = typer.Option(FileSetMode.auto, "--file-set", metavar="MODE", help=_FILE_SET_HELP),
    chunk_mib: int = typer.Option(32, "--chunk-mib", min=1, max=4096, metavar="MIB",
                                  help="MiB of a capture read at a time (at most: a chunk of small packets is "
                                       "about 80,000 records): less takes less memory and more "
                                       "time (32: ~230-250 MiB peak at any capture size; 16: ~15 % slower, "
                                       "~40 MiB less; more than 32 gains little: a batch stops at 80,000 "
                                       "packets, carried ones included)"),
    fail_on: List[str] = _fail_on_option(),
    verdict: List[str] = typer.Option([], "--verdict", metavar="VERDICT[,…]", help=(
        "write only the flows with these verdicts (repeatable, or a comma list): ok, blocked, unexpected, "
        "unclassified. With --purpose and --reason: the rows that pass all three. The JSONL/CSV rows and the "
        "table's flagged flows are filtered; the table's counts, the readiness checklist and the exit status "
        "stay those of all flows (the whole capture's verdict)")),
    purpose: List[str] = typer.Option([], "--purpose", metavar="PURPOSE[,…]", help=(
        "write only the flows of these purposes: a rule id (kscc-traffic rules), dns, or none (no purpose)")),
    reason: List[str] = typer.Option([], "--reason", metavar="REASON[,…]", help=(
        "write only the flows with one of these reasons: no_answer, rejected, icmp_unreachable, tls_failed, "
        "tls_intercepted, not_tls, host_mismatch, wrong_direction, undocumented_port, not_unicast, one_way, "
        "port_scan, address_scan, wrong_source, dns_truncated, partial, or none (no reason)")),
) -> None:
    """Analyse captures: flows, documented purposes, verdicts.

    Each capture is read in chunks and finished flows are reported as they leave memory, so any
    size fits; several captures are analysed in parallel (one process per core) and reported
    together, file by file. The files of one ring buffer or file set are one capture (--file-set).
    """
    captures = _expand_patterns(captures)
    _fail_if_missing(captures, lenient)
    from .output import FlowSink
    from .parallel import analyze_each

    fail_on = _fail_on(fail_on)
    skip_or_fail = _skip_or_fail(lenient, several=len(captures) > 1)
    captures, folder_notes = _capture_paths(captures, skip_or_fail, engine.value)
    if _several_units(captures, file_set.value):   # (a folder of several captures)
        skip_or_fail = _skip_or_fail(lenient, several=True)
    output = _stdout_dash(output)
    _check_output(output, [*captures, rules])
    _extension_warning(output, format.value)
    ruleset = _load_rules(rules)
    keep = _flow_filter(verdict, purpose, reason, ruleset)

    # what cannot be read at all fails before any output is written
    units, warnings = _readable_units(captures, engine.value, file_set.value, skip_or_fail)
    warnings[:0] = folder_notes
    if not units:
        raise _fail("no capture could be read")
    analysed = 0
    spans: list = []        # (capture, its ReadStats) of each capture analysed
    _terminate_cleanly()
    target = _open_output(output)
    out = target.stream if target else sys.stdout
    sink = FlowSink(format.value, out, ruleset, lambda o: _console(o if output else None), keep=keep)
    try:
        with _progress(units) as advance:
            for result in analyze_each(units, ruleset, engine.value, jobs, progress=advance,
                                       chunk_bytes=chunk_mib << 20, render=sink.render()):
                if result.error:
                    if result.temp_folder:          # the machine's problem: never a skipped capture
                        raise _fail(result.error)
                    skip_or_fail(result.error)
                    continue
                try:
                    for batch in result.batches():
                        sink.add(batch)
                        del batch   # (not kept while the next batch is analysed)
                except OSError as e:
                    raise _write_failed(e, output)
                except TemporaryFolderError as e:   # (--lenient skips only unreadable captures)
                    raise _fail(str(e))
                except KsccTrafficError as e:       # (the second process stopped: WorkerError)
                    skip_or_fail(str(e))
                    continue
                except Exception as e:  # a bug of ours: one line, never a traceback
                    skip_or_fail(f"{path_text(result.path)}: internal error ({type(e).__name__}: {e}); "
                                 "please report it with the capture")
                    continue
                warnings.extend(result.stats.warnings if result.stats else [])
                spans.append((result.path, result.stats))
                analysed += 1
        if not analysed:
            raise _fail("no capture could be read")
        if file_set.value == "auto":
            warnings.extend(_unjoined_pieces(spans))
        if len(spans) > 1:          # (the two sides of a NAT given apart: kscc_traffic.natpairs)
            from .natpairs import across_captures
            warnings.extend(across_captures([(path_text(p), st.nat_syns) for p, st in spans if st is not None]))
        for w in warnings:
            _say("Warning", w)
        try:
            sink.close()
            if target:
                target.commit()
            else:
                out.flush()
        except OSError as e:
            raise _write_failed(e, output)
        except Exception as e:  # a bug of ours (in the summary, the advice): status 2, not 1 ("flagged")
            raise _fail(f"internal error while writing the report ({type(e).__name__}: {e}); "
                        "please report it with the capture")
    except KeyboardInterrupt:             # Ctrl-C, SIGTERM: say what became of the report
        from .capture.files import is_stdin
        # (Ctrl-C on a pipeline stops the capturing program too: how to have its capture analysed)
        hint = ("; to stop a capture piped in and have it analysed, stop the capturing program alone "
                "(tcpdump -c COUNT, timeout 60 tcpdump …): the analysis ends with its pipe"
                if any(is_stdin(u) for u in units) else "")
        raise _interrupted(target, sink, hint)
    finally:
        if target:
            target.discard()              # nothing left to do after a commit
    raise typer.Exit(_exit_status(sink.verdicts, fail_on, sink.ksc, analysed))


def _unjoined_pieces(spans) -> List[str]:
    """The warning lines of :func:`~kscc_traffic.capture.filesets.unjoined_pieces` for the
    captures analysed one by one (a file set read as one is left out): ``spans`` holds
    (capture, its :class:`~kscc_traffic.capture.stats.ReadStats` or None) per capture."""
    from .capture.filesets import FileSet, unjoined_pieces

    return unjoined_pieces([(path_text(p), st.first_frame_ns, st.last_frame_ns) for p, st in spans
                            if st is not None and not isinstance(p, FileSet)])


def _flow_filter(verdicts: List[str], purposes: List[str], reasons: List[str], ruleset):
    """The :class:`~kscc_traffic.output.FlowFilter` of ``--verdict``, ``--purpose`` and
    ``--reason`` (each given any number of times, each value a comma list), None when none is
    given; an unknown value is a usage error (``Error: Invalid value for '--verdict': …``, the
    valid values listed; status 2)."""
    from .output import NONE, REASONS, VERDICTS, FlowFilter

    def values(option: str, given: List[str], valid) -> frozenset:
        out = {v.strip() for g in given for v in g.split(",") if v.strip()}
        if given and not out:
            raise _click_exceptions().BadParameter(f"give one or more of: {', '.join(valid)}",
                                                   param_hint=f"'{option}'")
        bad = sorted(out - set(valid))
        if bad:
            raise _click_exceptions().BadParameter(
                f"unknown {option[2:]} {', '.join(repr(escape_terminal(b)) for b in bad)}; valid: {', '.join(valid)}",
                param_hint=f"'{option}'")
        return frozenset(out)

    ids = [r.id for r in ruleset.rules]
    keep = FlowFilter(values("--verdict", verdicts, VERDICTS),
                      values("--purpose", purposes, [*ids, *(["dns"] if "dns" not in ids else []), NONE]),
                      values("--reason", reasons, [*REASONS, NONE]))
    return keep or None


#: the exit status of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT), as a shell reports it
EXIT_INTERRUPTED = _startup.EXIT_INTERRUPTED


def _readable_units(captures, engine: str, mode: str, skip_or_fail):
    """The captures as units of analysis (:func:`~kscc_traffic.capture.filesets.group_file_sets`
    with ``mode``), checked before any output is written (:func:`~kscc_traffic.analyze.check_capture`):
    a file on its own that cannot be analysed at all goes to ``skip_or_fail``; a file of a set
    whose content cannot is left out of its set with a warning line and the others are read (a
    ring buffer's last file cut by a crash; one in the middle: connections across it may be
    split), the set going to ``skip_or_fail`` when none of its files can be; a file of a set that
    is there but cannot be opened or read (:class:`~kscc_traffic.errors.CaptureAccessError`:
    Permission denied, an I/O error) goes to ``skip_or_fail`` as a file on its own does (break-it
    20 F11: the connections across it were judged blocked, exit 1). Returns (units, warning lines)."""
    from .analyze import check_capture
    from .errors import CaptureAccessError
    from .capture.files import is_stdin
    from .capture.filesets import FileSet, group_file_sets

    def problem(path) -> tuple[Optional[str], bool]:
        """(the one-line message, None: it can be read; whether the file cannot be opened or read,
        not its content)"""
        if is_stdin(path):    # (read once: its errors come from its first chunk, before any output)
            return None, False
        try:
            check_capture(path, engine)
            return None, False
        except KsccTrafficError as e:
            return str(e), isinstance(e, CaptureAccessError)
        except OSError as e:
            return f"{path_text(path)}: {e.strerror or e}", True

    units, warnings = group_file_sets(captures, mode)
    out = []
    for u in units:
        if not isinstance(u, FileSet):
            msg, _ = problem(u)
            if msg is None:
                out.append(u)
            else:
                skip_or_fail(msg)
            continue
        keep, first = [], None
        for k, p in enumerate(u.paths):
            msg, access = problem(p)
            if msg is None:
                keep.append(p)
            elif access:
                # (a file there that cannot be opened is no damage the capture suffered: it fails
                # as a file on its own does, or is skipped with --lenient; the others are read)
                skip_or_fail(f"{msg} (a file of {path_text(u)}; without it connections across it "
                             "may show as blocked or split)")
            else:
                first = first or msg
                gap = ("; connections across it may show as blocked or split"
                       if 0 < k < len(u.paths) - 1 else "")
                warnings.append(f"skipped {msg} (a file of {path_text(u)}; its other files are read{gap})")
        if not keep:
            skip_or_fail(first)
        else:
            out.append(keep[0] if len(keep) == 1 else FileSet(tuple(keep), u.kind))
    return out, warnings


def _capture_paths(captures: List[str], skip_or_fail: Callable[[str], None],
                   engine: str = "builtin") -> tuple[List[Path], List[str]]:
    """The capture arguments as paths, and the warning lines of the folders among them; an empty
    one (``analyze "$CAP"`` with ``CAP`` unset) is an ``Error:`` line and status 2 (pathlib would
    make it ``.``, the current folder). A folder stands for the capture files in it (not in its
    subfolders), in name order: a ring buffer's or a file set's folder (``dumpcap -b files:10 -w
    dir/x.pcapng``); a file is one when its first bytes are a pcap, pcapng or compressed file's; a
    file that cannot be opened is kept (it fails as given by name: ``Error:``, or skipped with
    ``--lenient``). What else the folder holds is named in one warning line per folder
    (:func:`kscc_traffic.capture.folders.folder_captures`). A folder with no capture, or one that
    cannot be listed goes to ``skip_or_fail`` (:func:`_skip_or_fail`: an ``Error:`` line, or
    with ``--lenient`` a ``Warning: skipped …`` line). ``-`` is standard input
    (:func:`_stdin_capture`, ``engine`` the one it is read with)."""
    from .capture.folders import expand_folders

    if any(c == "" for c in captures):
        raise _fail("an empty capture name (an unset shell variable?); give a pcap or pcapng file")
    from .capture.files import is_stdin
    if any(c == "-" or is_stdin(c) for c in captures):
        return [_stdin_capture(captures, engine)], []
    try:
        return expand_folders(captures, skip_or_fail)
    except KsccTrafficError as e:
        raise _fail(str(e))


def _stdin_capture(captures: List[str], engine: str = "builtin") -> Path:
    """The capture ``-``: standard input, read as a stream (``tcpdump -w - | kscc-traffic analyze
    -``; a file named ``-`` is given as ``./-``), as :data:`~kscc_traffic.capture.files.STDIN`.
    What needs a file that can be read again is an ``Error:`` line saying so (status 2): another
    capture beside it, the tshark engine; and standard input that is a terminal or closed."""
    from .analyze import _check_source
    from .capture.files import STDIN, STDIN_TEXT

    # (the lines name it "standard input", as the reader's own do, not "-" or "/dev/stdin")
    if len(captures) != 1:
        raise _fail(f"{STDIN_TEXT} is analysed only on its own, not beside other captures (each "
                    "is checked before any is analysed, so read twice; a pipe is read once): save it to "
                    "a file first (… > cap.pcap) to analyse them together")
    if engine == "tshark":
        raise _fail(f"{STDIN_TEXT}: --engine tshark reads only a file (tshark's passes read it more "
                    "than once); save the capture to a file first (… > cap.pcap), or use the built-in engine")
    try:
        _check_source(STDIN)
    except KsccTrafficError as e:        # (closed, a terminal: its text names standard input)
        raise _fail(str(e))
    return Path(STDIN)


def _several_units(captures: List[Path], mode: str) -> bool:
    """Whether the capture paths (folders expanded) are more than one capture once the files of
    a ring buffer or file set are grouped (``--file-set`` ``mode``): ``analyze DIR`` of several
    captures, one of them damaged, then has an ``Error:`` line naming ``--lenient`` as
    ``analyze a.pcap b.pcap`` has (newcomer 39); a ring buffer's folder alone does not."""
    if len(captures) < 2:
        return False
    from .capture.filesets import group_file_sets
    return len(group_file_sets(captures, mode)[0]) > 1


def _skip_or_fail(lenient: bool, into: Optional[List[str]] = None,
                  several: bool = False) -> Callable[[str], None]:
    """``f(msg)`` for what cannot be read at all: without ``lenient`` an ``Error:`` (exit 2);
    with it a ``Warning: skipped …`` line now, also put into ``into`` (the HTML report's reader
    warnings) when given. With ``several`` (more than one capture given: ``analyze *`` in a
    folder that also holds notes.txt) the ``Error:`` line says how to analyse the others anyway
    (newcomer 35 F6b: it named neither ``--lenient`` nor the folder)."""
    hint = " (--lenient skips what cannot be read and analyses the others)" if several else ""

    def skip_or_fail(msg: str) -> None:
        if not lenient:
            raise _fail(msg + hint)
        _say("Warning", f"skipped {msg}")
        if into is not None:
            into.append(f"skipped {msg}")
    return skip_or_fail


def _stdout_dash(output: Optional[Path]) -> Optional[Path]:
    """``--output -`` is standard output (as for most command-line tools), not a file named ``-``
    (pathlib makes ``./-`` the same ``-``: a file of that name is given by its full path). An
    ``Error:`` line and status 2 when that is standard output and it is closed (``>&-``: Python
    then has no ``sys.stdout``)."""
    output = None if output is not None and str(output) == "-" else output
    if output is None and sys.stdout is None:
        raise _fail("standard output is closed: give --output FILE for the report")
    return output


def _open_output(output: Optional[Path]):
    """The :class:`kscc_traffic.outfile.ReportFile` of ``--output``, opened (None: standard
    output), or an ``Error:`` line and status 2 when it cannot be opened."""
    from .outfile import ReportFile

    if output is None:
        return None
    target = ReportFile(output)
    try:
        target.open()
    except OSError as e:
        raise _fail(f"{path_text(output)}: cannot write: {e.strerror or e}")
    return target


class _NoRows:
    """What :func:`_interrupted` reads of a sink, for a run stopped before its sink was made."""

    rows = 0
    writing = False

    def __init__(self, format: str):
        self.format = format


def _interrupted(target, sink, hint: str = "") -> "typer.Exit":
    """The exit of a run stopped by Ctrl-C or SIGTERM: one ``Interrupted:`` line on stderr saying
    what became of the report (``--output`` a file: not written, its previous content kept; a
    device or FIFO, or standard output: what it got is incomplete; the table: not printed),
    ``hint`` added after it (``live``: where the capture is), status :data:`EXIT_INTERRUPTED`."""
    flows = f"{sink.rows} flow{'s' if sink.rows != 1 else ''}"
    where = "the report" if target is None else path_text(target.path)
    if target is not None and target.atomic:
        msg = (f"{where} not written (stopped after {flows}; "
               + ("its previous content is kept)" if os.path.lexists(target.path) else "no file made)"))
    elif sink.format == "table":
        msg = f"stopped after {flows}; the table report was not " + (
            "printed" if target is None else f"written to {where}")
    else:
        part = " and part of the next batch" if getattr(sink, "writing", False) else ""
        msg = f"{'standard output' if target is None else where} is incomplete ({flows} written{part})"
    if target is not None:
        target.discard()
    _say("Interrupted", msg + hint)
    return typer.Exit(EXIT_INTERRUPTED)


def _live_interrupted(output: Optional[Path], write: Optional[Path]) -> "typer.Exit":
    """The exit of a ``live`` run stopped a second time (Ctrl-C, SIGTERM) before its report was
    written: the ``Interrupted:`` line of ``analyze`` (no flow written; ``--output`` a file: its
    previous content kept), with where the capture is (``--write``) and how to analyse it;
    status :data:`EXIT_INTERRUPTED`."""
    from .outfile import ReportFile

    target = ReportFile(output) if output is not None else None
    msg = _live_hint(write)
    if target is not None and target.atomic:
        _say("Interrupted", f"{path_text(output)} not written (stopped before the report was built; "
             + ("its previous content is kept)" if os.path.lexists(output) else "no file made)") + msg)
    else:
        where = "standard output" if output is None else path_text(output)
        _say("Interrupted", f"stopped before the report was built: nothing written to {where}" + msg)
    return typer.Exit(EXIT_INTERRUPTED)


def _live_hint(write: Optional[Path]) -> str:
    """What an ``Interrupted:`` line of ``live`` adds: where the capture is (``--write``) and how
    to get its report; or that it was not kept."""
    if write is None:
        return "; the packets were not kept (--write FILE.pcapng keeps them)"
    name = path_text(write)
    if not os.path.lexists(write):    # (stopped before the capture began)
        return f"; no capture was written to {name}"
    return f"; the capture is in {name}: kscc-traffic analyze {shlex.quote(name)}"


def _terminate_cleanly() -> None:
    """From here on Ctrl-C and SIGTERM (kill, timeout, a service stop) raise
    :class:`KeyboardInterrupt`, so the command stops its workers, removes its temporary files and
    says what became of the report (:func:`_interrupted`). Until a command calls this (before it
    opens its output), :func:`main` has them end the run at once (nothing to clean up yet; see
    :mod:`kscc_traffic._startup`)."""
    _startup.interrupt_on_signals()


#: captures smaller than this (bytes in all) are done before a progress bar would be worth showing
PROGRESS_MIN_BYTES = 32 << 20


class _progress:
    """A transient progress bar on stderr (a terminal only, and only for large captures);
    the context value is ``advance(nbytes)``."""

    def __init__(self, units) -> None:
        """``units``: the captures (paths, or file sets with ``paths``). The bar follows the files'
        own bytes, a compressed file's compressed ones (break-it 21 F9: no bar for any compressed
        capture); a file set with a compressed file gets none (read in one process, its bytes read
        are counted decompressed)."""
        from .capture.compressed import codec_of
        from .capture.files import is_stdin
        total = 0
        for u in units:
            if is_stdin(u):    # (its size is not known)
                total = None
                break
            paths = getattr(u, "paths", None)
            for p in paths if paths is not None else (u,):
                try:
                    total += p.stat().st_size
                    with open(p, "rb") as f:
                        if paths is not None and codec_of(f.read(8)):
                            total = None
                            break
                except OSError:
                    pass
            if total is None:
                break
        self.total = total
        self.bar = None

    def __enter__(self):
        # (the size first: a small capture needs no console, :class:`_ErrConsole`)
        if not (self.total is not None and self.total >= PROGRESS_MIN_BYTES and err.is_terminal):
            return lambda n: None
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)
        self.bar = Progress(TextColumn("reading"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                            TimeRemainingColumn(), console=err._console, transient=True)
        self.bar.start()
        task = self.bar.add_task("read", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command("rules")
def rules_cmd(
    bpf: bool = typer.Option(False, "--bpf", metavar="", help="print a capture filter covering every rule, DNS, ICMP, IGMP, IP fragments, IPv6 extension headers, "
                             "IPsec AH/ESP and VPN tunnels (IKE, OpenVPN, WireGuard, L2TP, PPTP/GRE)"),
    vlan: bool = typer.Option(True, "--vlan/--no-vlan", metavar="",
                              help="with --bpf: also match 802.1Q/802.1ad-tagged and QinQ (double-tagged) frames "
                                   "(Ethernet only; use --no-vlan for tcpdump -i any, tun/ppp or loopback captures)"),
    proxy_port: List[int] = typer.Option([], "--proxy-port", min=1, max=65535, metavar="N",
                                         help="with --bpf: also match TCP port N, repeatable (an HTTP "
                                              "proxy the agents CONNECT through, e.g. 3128 or 8080)"),
    rules: Optional[Path] = typer.Option(None, "--rules", metavar="FILE", help="rules file (default: bundled)"),
) -> None:
    """List the documented purposes (or print a BPF capture filter for them)."""
    from .rules import bpf_filter

    if not bpf and (proxy_port or not vlan):
        raise _fail(f"{'--proxy-port' if proxy_port else '--no-vlan'} changes the capture filter: "
                    "use it with --bpf")
    ruleset = _load_rules(rules)
    try:
        if bpf:
            typer.echo(bpf_filter(ruleset, vlan_depth=2 if vlan else 0, proxy_ports=proxy_port))
        else:
            _print_rules(ruleset)
        sys.stdout.flush()
    except OSError as e:  # `rules | head`: status 141 as for analyze
        raise _write_failed(e, None)


#: below this many columns ``rules`` prints one block per purpose, not a table (a 9-column table
#: folded its purpose text 6 characters wide at 80 columns; newcomer 31 F9)
RULES_TABLE_MIN_WIDTH = 120


def _print_rules(ruleset) -> None:
    """The table of documented purposes on standard output; below
    :data:`RULES_TABLE_MIN_WIDTH` columns one block per purpose (its id, transport, ports, cast,
    protocol, opener and section on one line, the host mask and the purpose text under it)."""
    from rich.table import Table
    from rich.text import Text

    console = _console()
    if console.width < RULES_TABLE_MIN_WIDTH:
        import textwrap
        width = max(console.width, 40)
        out = Text(f"{len(ruleset.rules)} documented purposes\n", style="bold")
        for r in ruleset.rules:   # (a rules file is the user's text: escaped, no markup)
            out.append("\n")
            out.append(escape_terminal(r.id), style="bold")
            head = (f"{r.transport.upper()} {r.port_text} {r.cast}, {r.app_protocol}, "
                    f"opened {r.opener.replace('_', ' ')}, {r.section}")
            out.append("\n" + textwrap.fill(escape_terminal(head), width, initial_indent="  ",
                                            subsequent_indent="    "))
            if r.host_mask:
                out.append("\n" + textwrap.fill(escape_terminal(f"host mask: {r.host_mask}"), width,
                                                initial_indent="  ", subsequent_indent="    "))
            text = r.purpose + (f" ({r.condition})" if r.condition else "")
            out.append("\n" + textwrap.fill(escape_terminal(text), width, initial_indent="  ",
                                            subsequent_indent="  ") + "\n")
        console.print(out, soft_wrap=True)
        return
    t = Table(title=f"{len(ruleset.rules)} documented purposes")
    for col in ("id", "section", "transport", "ports", "cast", "protocol", "opened by", "host mask", "purpose"):
        t.add_column(col, overflow="fold")
    for r in ruleset.rules:   # a rules file is the user's text: cells are Text (no markup, no emoji)
        t.add_row(*(Text(escape_terminal(v)) for v in (
            r.id, r.section, r.transport, r.port_text, r.cast, r.app_protocol, r.opener, r.host_mask or "-",
            r.purpose + (f" ({r.condition})" if r.condition else ""))))
    console.print(t)


@app.command()
def report(
    captures: List[str] = typer.Argument(..., metavar="CAPTURE", help=_REPORT_CAPTURE_HELP),
    html: Path = typer.Option(..., "--html", metavar="FILE", help="write the self-contained HTML report here"),
    rules: Optional[Path] = typer.Option(None, "--rules", metavar="FILE",
                                         help="rules file (default: bundled KSC Cloud rules)"),
    lenient: bool = typer.Option(False, "--lenient", metavar="",
                                 help="skip captures that cannot be read at all (warning) instead of exit 2"),
    file_set: FileSetMode = typer.Option(FileSetMode.auto, "--file-set", metavar="MODE", help=_FILE_SET_HELP),
    fail_on: List[str] = _fail_on_option(),
) -> None:
    """Write one self-contained HTML report of the captures.

    The readiness checklist, charts, the flagged flows with what to change, and a sortable,
    filterable flow table, in one file that needs no network. Exit status as for `analyze`.
    """
    captures = _expand_patterns(captures)
    _fail_if_missing(captures, lenient)
    from .analyze import analyze_file, capture_names
    from .html_report import write_html

    fail_on = _fail_on(fail_on)
    skipped: list[str] = []   # (said in the HTML report too: it must not look complete)
    skip_or_fail = _skip_or_fail(lenient, skipped, several=len(captures) > 1)
    captures, folder_notes = _capture_paths(captures, skip_or_fail)
    if _several_units(captures, file_set.value):   # (a folder of several captures)
        skip_or_fail = _skip_or_fail(lenient, skipped, several=True)
    if str(html) == "-":
        raise _fail("--html -: the HTML report is one file; give its name (e.g. --html report.html)")
    ruleset = _load_rules(rules)
    _check_output(html, [*captures, rules], "--html")
    _extension_warning(html, "html", "--html")
    import pandas as pd

    _terminate_cleanly()
    try:
        parts, read, spans = [], [], []
        # (missing, a directory, not a capture, damaged at once)
        units, warnings = _readable_units(captures, "builtin", file_set.value, skip_or_fail)
        warnings[:0] = folder_notes
        for path, name in zip(units, capture_names(units)):
            try:
                a = analyze_file(path, ruleset, name=name)
            except KsccTrafficError as e:
                skip_or_fail(str(e))
                continue
            except OSError as e:
                skip_or_fail(f"{path_text(path)}: {e.strerror or e}")
                continue
            except Exception as e:  # a bug of ours: one line, never a traceback
                skip_or_fail(f"{path_text(path)}: internal error ({type(e).__name__}: {e}); please report it with the capture")
                continue
            parts.append(a.flows)
            warnings.extend(a.warnings)
            read.append(path)
            spans.extend((path, st) for st in a.stats.values())
        if not parts:
            raise _fail("no capture could be read")
        if file_set.value == "auto":
            warnings.extend(_unjoined_pieces(spans))
        flows = pd.concat(parts, ignore_index=True)
        for w in warnings:
            _say("Warning", w)
        try:
            write_html(html, flows, ruleset, captures=read, warnings=skipped + warnings)
        except BrokenPipeError:   # (--html /dev/stdout | head: closed by its reader, as analyze)
            raise typer.Exit(EXIT_PIPE_CLOSED)
        except OSError as e:
            raise _fail(f"{path_text(html)}: cannot write the report ({e.strerror or e})")
        except Exception as e:  # a bug of ours
            raise _fail(f"{path_text(html)}: internal error while writing the report ({type(e).__name__}: {e})")
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: the report is written to a temporary file renamed at the end, so
        # the file named is untouched (a device or FIFO got what was written)
        regular = not html.exists() or html.is_file()
        state = ("not written (" + ("its previous content is kept)" if os.path.lexists(html) else "no file made)")
                 if regular else "is incomplete")
        _say("Interrupted", f"{path_text(html)} {state}")
        raise typer.Exit(EXIT_INTERRUPTED)
    from .output import flagged_verdicts
    from .report import any_ksc
    status = _exit_status(flagged_verdicts(flows), fail_on, any_ksc(flows, ruleset), len(read))
    if html.is_file():
        # (one last line that says what was written: silence and exit status 1 for flagged flows
        # read as a failure; newcomer s55 #5)
        v = flows["verdict"].value_counts() if "verdict" in flows else {}
        err.print(escape_terminal(f"Wrote {path_text(html)} ({len(flows):,} flow{'' if len(flows) == 1 else 's'}: "
                                  f"{int(v.get('blocked', 0)):,} blocked, {int(v.get('unexpected', 0)):,} unexpected)"),
                  markup=False, soft_wrap=True)
    raise typer.Exit(status)


@app.command()
def live(
    interface: Optional[str] = typer.Option(None, "--interface", "-i", metavar="INTERFACE",
                                            help="interface to capture on (default: the default route's; without one, the first interface up; --list-interfaces says which)"),
    duration: Optional[float] = typer.Option(None, "--duration", min=0.0, metavar="SECONDS", help="stop after SECONDS"),
    count: Optional[int] = typer.Option(None, "--count", "-c", min=1, metavar="N", help="stop after N packets"),
    write: Optional[Path] = typer.Option(None, "--write", "-w", metavar="FILE", help="also keep every captured packet in this pcapng file"),
    engine: LiveEngine = typer.Option(LiveEngine.scapy, "--engine", metavar="ENGINE",
                                      help="scapy (default, no Wireshark needed) or tshark (pyshark/dumpcap)"),
    bpf: Optional[str] = typer.Option(None, "--filter", metavar="BPF",
                                      help="capture filter, tcpdump syntax (default: the rules' ports, DNS, ICMP "
                                           "and IP fragments, as rules --bpf)"),
    proxy_port: List[int] = typer.Option([], "--proxy-port", min=1, max=65535, metavar="N",
                                         help="add TCP port N to the default filter, repeatable (an HTTP proxy the "
                                              "agents CONNECT through, e.g. 3128 or 8080; not with --filter)"),
    rules: Optional[Path] = typer.Option(None, "--rules", metavar="FILE",
                                         help="rules file (default: bundled KSC Cloud rules)"),
    no_answer_timeout: float = typer.Option(3.0, "--no-answer-timeout", min=0.0, metavar="SECONDS",
                                            help="report an unanswered connection attempt as blocked after SECONDS"),
    idle_timeout: List[str] = typer.Option([], "--idle-timeout", metavar="NAME=SECONDS",
                                           help="when flows are summarised and evicted, the option once per NAME: tcp (300), "
                                                "udp (60), dns (10, UDP to or from port 53, 137, 5353, 5355), icmp (60), other (60), close (5, "
                                                "after FIN/RST), e.g. "
                                                "--idle-timeout tcp=600 --idle-timeout close=2"),
    format: Format = typer.Option(Format.table, "--format", "-f", metavar="FORMAT", help="final report: table, jsonl or csv"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE",
                                          help="write the final report here instead of stdout"),
    list_interfaces: bool = typer.Option(False, "--list-interfaces", metavar="", help="list the interfaces and exit"),
    fail_on: List[str] = _fail_on_option(live=True),
    verbose: bool = typer.Option(False, "--verbose", "-v", metavar="",
                                 help="print the whole default capture filter at the start (else: how many "
                                      "ports it covers; rules --bpf prints it)"),
) -> None:
    """Capture live, show what is blocked as it happens, then print the same report as analyze."""
    from .live.sources import default_interface_why, interface_state
    from .live.sources import list_interfaces as interfaces

    fail_on = _fail_on(fail_on)
    if list_interfaces:
        default, why = default_interface_why()
        for name in interfaces():  # (names from the kernel: escaped all the same)
            # (an interface down or without carrier marked so: capturing on it sees nothing)
            state = interface_state(name)
            typer.echo(f"{escape_terminal(name)}{f'  ({state})' if state else ''}"
                       f"{f'  (default: {why})' if name == default else ''}")
        raise typer.Exit(EXIT_OK)
    output = _stdout_dash(output)
    if write is not None and str(write) == "-":
        raise _fail("--write -: the packets go to a pcapng file; give its name (e.g. --write agent.pcapng)")
    _check_output(output, [rules])
    _check_output(write, [rules], "--write")
    _check_output(output, [write], role="the --write file")
    if proxy_port and bpf is not None:
        raise _fail("--proxy-port adds to the default capture filter; with --filter, put "
                    "'or tcp port N' in the filter instead")
    ruleset = _load_rules(rules)
    if write is not None and write.suffix.lower() in (".pcap", ".cap"):
        # (the writer keeps the capture's end and the kernel's drop count in pcapng blocks, and
        # stays valid whatever stops it: always pcapng)
        _say("Warning", f"{path_text(write)}: written in pcapng format whatever its name says (tools that go "
             f"by the extension may expect pcap): name it .pcapng, or convert it afterwards with "
             f"`editcap -F pcap {shlex.quote(path_text(write))} OUT.pcap`")
    from .live.run import LiveOptions, run_live
    from .live.session import Timeouts
    try:
        timeouts = Timeouts.parse(idle_timeout)
    except ValueError as e:
        raise _fail(f"--idle-timeout: {e}")
    opts = LiveOptions(rules=ruleset, interface=interface, duration=duration, count=count, write=write,
                       engine=engine.value, bpf=bpf, no_answer_timeout=no_answer_timeout, timeouts=timeouts,
                       proxy_ports=tuple(proxy_port), show_filter=verbose)
    # (the final report goes through a temporary file; SIGTERM while the report is built, after
    # the capture stopped: like Ctrl-C)
    _terminate_cleanly()
    try:
        result = run_live(opts)
    except KsccTrafficError as e:
        raise _fail(str(e))
    except OSError as e:
        raise _fail(f"{e.filename or write or 'capture'}: {e.strerror or e}")
    except KeyboardInterrupt:
        # a second Ctrl-C (or SIGTERM) while the capture stopped and its report was being built
        raise _live_interrupted(output, write)
    except Exception as e:  # a bug of ours: one line, never a traceback
        raise _fail(f"live capture: internal error ({type(e).__name__}: {e}); please report it")
    try:
        flows = result.flows
        if result.note:
            _say("Warning", result.note)
        # (tshark reports no kernel drops: said so, not "unknown dropped"; newcomer s55 #7)
        drops = ("kernel drops not reported" if result.dropped is None
                 else f"{result.dropped} dropped by the kernel")
        err.print(escape_terminal(f"Captured {result.captured} packet{'' if result.captured == 1 else 's'} on {result.interface} ({result.engine}), "
                                  f"{drops}; stopped by {result.stop_reason}")
                  + (f"; written to {path_text(write)}" if write else ""), markup=False, soft_wrap=True)
    except KeyboardInterrupt:   # (before the report: _emit says what became of it once begun)
        raise _live_interrupted(output, write)
    _emit(flows, ruleset, format, output, bpf, hint=_live_hint(write), fail_on=fail_on)


#: a suggestion of click for an unknown option is kept when it is this close (difflib's ratio;
#: click's own cutoff of 0.6 offers ``--jobs`` for ``--bogus``)
SUGGESTION_CUTOFF = 0.75


def _click_exceptions():
    """The click exceptions typer raises: its own copy of click (typer >= 0.24), or click."""
    try:
        from typer._click import exceptions
    except ImportError:  # an older typer on click
        from click import exceptions
    return exceptions


def usage_error_text(e) -> str:
    """One line for a usage error (unknown option, bad value, missing option or argument), as
    common command lines write it: ``Error: …`` without rich's box, with click's suggestion for
    an unknown option only when it is close."""
    import difflib

    if isinstance(e, _click_exceptions().NoSuchOption):
        close = [p for p in (e.possibilities or [])
                 if difflib.SequenceMatcher(None, e.option_name, p).ratio() >= SUGGESTION_CUTOFF]
        text = f"No such option: {e.option_name}" + (f" (did you mean {' or '.join(close)}?)" if close else "")
    else:
        text = e.format_message().replace("Value error, ", "")
        if (getattr(getattr(e, "param", None), "name", None) == "format"
                and any(f"'{x}'" in text.lower() for x in ("html", "htm"))):
            # (analyze --format html: newcomer 39, the HTML report is a command of its own)
            text = text.rstrip(".") + f"; the HTML report is `{HTML_HOW}`"
    return f"Error: {escape_terminal(' '.join(text.split()))}"


class _Argument(typer.core.TyperArgument):
    """A positional argument whose help names it by its metavar alone (``CAPTURE``): typer 0.29
    also shows its Python type there (``CAPTURE <list[str]>``)."""

    def display_type_rich(self, ctx):
        """The help's type label: none when a metavar names the argument, else typer's."""
        return None if self.metavar else super().display_type_rich(ctx)


class _OnceCommand(typer.core.TyperCommand):
    """A command whose options that take one value may be given only once: click keeps the last
    value silently (``--rules a.toml --rules b.toml`` analysed with b alone); here that is a
    usage error, ``Error: --rules given twice (…)``, status 2. Flags (``--lenient``,
    ``--vlan/--no-vlan``) and repeatable options (``--proxy-port``) are not concerned.
    Its positional arguments are :class:`_Argument` (help: ``CAPTURE``, no type label)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        for param in self.params:   # (typer builds them; it has no class option for arguments)
            if type(param) is typer.core.TyperArgument:
                param.__class__ = _Argument

    def parse_args(self, ctx, args):
        if args and not ctx.resilient_parsing:
            # the parser alone (no callback, no conversion) to see each option as often as it
            # was given; a list of its own: the parser consumes the one it gets
            _, _, order = self.make_parser(ctx).parse_args(args=list(args))
            if any(getattr(p, "is_eager", False) for p in order):
                order = []                # --help: the help, whatever else is given
            seen = set()
            for param in order:
                if (getattr(param, "param_type_name", "") != "option" or param.multiple
                        or getattr(param, "count", False) or getattr(param, "is_flag", False)):
                    continue
                if param.name in seen:
                    names = " / ".join(param.opts)
                    ctx.fail(f"{names} given twice (it takes one value; the last one would "
                             "replace the first): give it once")
                seen.add(param.name)
        return super().parse_args(ctx, args)


for _info in app.registered_commands:   # (every command; set here, its decorator untouched)
    if _info.cls in (None, typer.core.TyperCommand):
        _info.cls = _OnceCommand


def _help_pipe_closed(argv: List[str]) -> bool:
    """Whether a status 1 from the command line parser is a help or version text whose reader
    went away (``kscc-traffic analyze --help | head -3``): rich (help) and click (``--version``)
    end such a run with status 1, as if something were flagged. Only for ``--help``/``--version``
    among the options (before ``--``) or no argument at all (the help of the bare command); a
    report's closed pipe is :data:`EXIT_PIPE_CLOSED` (:func:`_write_failed`)."""
    opts = argv[:argv.index("--")] if "--" in argv else argv
    if argv and not {"--help", "--version"} & set(opts):
        return False
    closed = type(sys.stdout).__name__ == "PacifyFlushWrapper"  # click's, after EPIPE
    if not closed:   # rich: standard output replaced by os.devnull
        try:
            closed = os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(os.devnull))
        except (OSError, ValueError, AttributeError):
            closed = False
    if closed:  # what is still buffered must not fail again when Python exits
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.__stdout__.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
    return closed


def main(args: Optional[List[str]] = None) -> None:
    """Console-script entry point: never lets a traceback reach the user for our own errors.
    A usage error is :func:`usage_error_text` and a ``Try '… --help' for help.`` line, status 2.
    Ctrl-C or SIGTERM at any moment: status :data:`EXIT_INTERRUPTED` and one ``Interrupted``
    line (the command's own, saying what became of its report, or a bare one); at once until
    the command has something to clean up (:mod:`kscc_traffic._startup`)."""
    global _interrupted_said
    _startup.exit_at_once_on_signals()    # first (already so when started by __main__.main)
    _interrupted_said = False
    try:
        _main(args)
    finally:   # (a caller of main in this process, e.g. a test, gets Python's usual Ctrl-C back)
        _startup.interrupt_on_signals()


def _main(args: Optional[List[str]]) -> None:
    cx = _click_exceptions()
    for stream in (sys.stdout, sys.stderr):
        # a terminal or pipe that cannot encode every character (PYTHONIOENCODING=ascii, a C
        # locale without UTF-8 mode): '§' and names from packets as \xNN, not a traceback
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass
    argv = sys.argv[1:] if args is None else list(args)
    try:
        code = app(args=args, standalone_mode=False)
    except SystemExit as e:
        if e.code == 1 and _help_pipe_closed(argv):  # `analyze --help | head -3`
            # (the bare command's help is a usage error, whoever reads it)
            sys.exit(EXIT_OK if argv else EXIT_UNUSABLE)
        raise
    except getattr(cx, "NoArgsIsHelpError", ()) as e:  # the command alone: its help (click >= 8.2)
        from typer import rich_utils
        rich_utils.rich_format_error(e)
        sys.exit(e.exit_code)
    except cx.UsageError as e:
        print(usage_error_text(e), file=sys.stderr)
        if e.ctx is not None:
            print(f"Try '{e.ctx.command_path} --help' for help.", file=sys.stderr)
        sys.exit(EXIT_UNUSABLE)
    except cx.ClickException as e:  # pragma: no cover - none raised by our commands
        _say("Error", e.format_message())
        sys.exit(e.exit_code)
    except typer.Abort:
        err.print("Aborted", markup=False)
        sys.exit(1)
    except KsccTrafficError as e:  # pragma: no cover - commands map these already
        _say("Error", str(e))
        sys.exit(EXIT_UNUSABLE)
    except KeyboardInterrupt:
        err.print("Interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as e:  # a bug of ours a command did not map: status 2 (1 reads as "flagged")
        _say("Error", f"internal error ({type(e).__name__}: {e}); please report it")
        sys.exit(EXIT_UNUSABLE)
    if code == EXIT_INTERRUPTED and not _interrupted_said:
        # typer ends a command stopped by a KeyboardInterrupt with status 130 and no word
        err.print("Interrupted", markup=False)
    sys.exit(code if isinstance(code, int) else 0)
