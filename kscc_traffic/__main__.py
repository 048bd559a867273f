"""``python -m kscc_traffic`` runs the command line; the ``kscc-traffic`` console script calls
:func:`main` here too.

Ctrl-C or SIGTERM from here on end the run with one ``Interrupted`` line on stderr and status
130, never a traceback (:mod:`kscc_traffic._startup`), also while the command line's modules
load: nothing heavier than :mod:`signal` is imported before the handlers are in place.
"""
from ._startup import exit_at_once_on_signals


def main() -> None:
    """The command line (:func:`kscc_traffic.cli.main`), with Ctrl-C and SIGTERM caught first."""
    exit_at_once_on_signals()
    from .cli import main as cli_main
    cli_main()


if __name__ == "__main__":
    main()
