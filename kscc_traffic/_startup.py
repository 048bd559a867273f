"""Ctrl-C and SIGTERM for the command line, in two phases (imports nothing but :mod:`os` and
:mod:`signal`: it is in place before the command line's modules load).

1. From the start (:mod:`kscc_traffic.__main__`, :func:`kscc_traffic.cli.main`) until a command
   has something to clean up: :func:`exit_at_once_on_signals`. Nothing is open or written yet,
   so the run ends there and then: one ``Interrupted`` line on stderr, status
   :data:`EXIT_INTERRUPTED`. A :class:`KeyboardInterrupt` would not do: raised inside an import
   it is lost when it lands in one of importlib's weakref callbacks ("Exception ignored in …",
   and the run goes on), and ``python -m`` ends killed by SIGINT (status -2) once one went
   through a string ``exec``/``eval`` (a dataclass or named tuple being made while a module
   loads: CPython's unhandled-KeyboardInterrupt flag), whatever status the program gave.
2. From the moment a command writes a report or starts workers (:func:`interrupt_on_signals`,
   ``kscc_traffic.cli._terminate_cleanly``): both raise :class:`KeyboardInterrupt`, so the
   command removes its temporary files, stops its workers and says what became of the report.

3. From the moment the command has ended (its report written, its exit status decided) until the
   process is gone (:func:`exit_with_on_signals`, :mod:`kscc_traffic.__main__` only): a signal
   ends the process at once with the command's own status, what it printed flushed; once
   Python's last ``atexit`` callbacks have run, signals are ignored for the rest of its teardown.
   Python gives the signals it handled back to the system's defaults late in its teardown, and
   a signal arriving then killed the process (status -2/-15, no word) after a complete run
   (the CI of stop 33: SIGTERM 0.5 s into the run; here ~0.9 s into a ~1 s run, 1 of 60 times).

A signal this process was started with ignored (``nohup``, ``cmd &`` in a script) stays ignored,
as Python itself leaves it. Python's own start-up (site-packages included) comes before any of
this, with Python's default handling.
"""
import atexit
import os
import signal
import sys

#: the exit status of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT), as a shell reports it
EXIT_INTERRUPTED = 130

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _exit_at_once(signum, frame) -> None:
    """Phase 1's handler: nothing to clean up yet."""
    try:
        os.write(2, b"Interrupted\n")
    except OSError:                     # stderr closed
        pass
    os._exit(EXIT_INTERRUPTED)


def _raise_interrupt(signum, frame) -> None:
    """Phase 2's SIGTERM handler: as Ctrl-C."""
    raise KeyboardInterrupt


def _set(handlers) -> None:
    for s, h in zip(_SIGNALS, handlers):
        try:
            if signal.getsignal(s) != signal.SIG_IGN:
                signal.signal(s, h)
        except ValueError:              # not the main thread (tests calling the app in a thread)
            pass


def exit_at_once_on_signals() -> None:
    """Phase 1: Ctrl-C or SIGTERM end the process at once with status 130 and one line."""
    _set((_exit_at_once, _exit_at_once))


def interrupt_on_signals() -> None:
    """Phase 2: Ctrl-C (Python's default) and SIGTERM raise :class:`KeyboardInterrupt`."""
    _set((signal.default_int_handler, _raise_interrupt))


def _exit_with(status: int):
    """Phase 3's handler: the command's output flushed, the process ends with ``status``."""
    def handler(signum, frame) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:           # closed, a broken pipe, a flush it interrupted
                pass
        os._exit(status)
    return handler



def _ignore_signals() -> None:
    _set((signal.SIG_IGN, signal.SIG_IGN))


def ignore_signals_at_exit() -> None:
    """Have signals ignored by the last ``atexit`` callback (registered first, called last): after
    it only Python's own teardown runs, which would give the signals back to their defaults
    (killed, no word). For the process's own run only (:mod:`kscc_traffic.__main__`)."""
    atexit.register(_ignore_signals)


def exit_status(code) -> int:
    """The process status of ``SystemExit(code)``, as Python gives it: None is 0, an int is
    itself, anything else (a message) is 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def exit_with_on_signals(status: int) -> None:
    """Phase 3: the command has ended with ``status``; Ctrl-C or SIGTERM from now on end the
    process at once with it (stdout and stderr flushed). For the process's own run only
    (:mod:`kscc_traffic.__main__`), never for a caller of :func:`kscc_traffic.cli.main` in its
    own process."""
    _set((_exit_with(status), _exit_with(status)))
