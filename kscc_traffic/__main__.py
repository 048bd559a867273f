"""``python -m kscc_traffic`` runs the command line; the ``kscc-traffic`` console script calls
:func:`main` here too.

Ctrl-C or SIGTERM from here on end the run with one ``Interrupted`` line on stderr and status
130, never a traceback (:mod:`kscc_traffic._startup`), also while the command line's modules
load: nothing heavier than :mod:`signal` is imported before the handlers are in place. Once the
command has ended they end the process with the command's own status (its output complete),
also during Python's teardown.
"""
import os
import sys

from ._startup import (EXIT_INTERRUPTED, exit_at_once_on_signals, exit_status, exit_with_on_signals,
                       ignore_signals_at_exit)


def leave_out_pyarrow() -> bool:
    """Keep pandas from importing pyarrow in this process (the command line's), when neither is
    loaded yet. pandas 3 imports pyarrow whenever it is installed (the ``test`` extra brings it),
    which costs the command line ~40 MiB of resident memory and ~0.2 s of start-up for nothing:
    no command reads or writes Arrow or Parquet, and pandas' text columns are then held as
    Python strings, as with a plain ``pip install .`` (no pyarrow). The output is byte for byte
    the same (1 M-packet benchmark JSON Lines, md5; ``tests/test_cli_without_pyarrow.py``).
    Library use (``import kscc_traffic`` in a notebook) is not affected: only :func:`main` calls
    this. Returns True when pyarrow was left out."""
    if "pyarrow" in sys.modules or "pandas" in sys.modules:
        return False
    sys.modules["pyarrow"] = None        # `import pyarrow` raises ImportError: pandas goes on without it
    return True


def one_blas_thread() -> bool:
    """Have numpy's BLAS (OpenBLAS) start one thread instead of one per core, when numpy is not
    loaded yet and nothing in the environment says otherwise (``OPENBLAS_NUM_THREADS``,
    ``OMP_NUM_THREADS``). No command multiplies matrices; OpenBLAS's pool of threads is started
    when numpy loads and stopped at exit, ~60 ms of the command line's wall and CPU time on 2
    cores for nothing. Set in the environment, it holds for the worker processes too. Returns
    True when set here."""
    if "numpy" in sys.modules or any(v in os.environ for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")):
        return False
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    return True


def main() -> None:
    """The command line (:func:`kscc_traffic.cli.main`), with Ctrl-C and SIGTERM caught first,
    pyarrow left out (:func:`leave_out_pyarrow`) and one BLAS thread (:func:`one_blas_thread`);
    once the command has ended, a signal no longer changes its exit status (phase 3 of
    :mod:`kscc_traffic._startup`)."""
    exit_at_once_on_signals()
    ignore_signals_at_exit()
    leave_out_pyarrow()
    one_blas_thread()
    try:
        from .cli import main as cli_main
        cli_main()
        exit_with_on_signals(0)
    except SystemExit as e:
        exit_with_on_signals(exit_status(e.code))
        raise
    except KeyboardInterrupt:   # a signal in the instant cli.main gave Python's handling back
        exit_with_on_signals(EXIT_INTERRUPTED)
        sys.stderr.write("Interrupted\n")
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
