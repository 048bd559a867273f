"""Which of the optional compiled parts this installation has.

setup.py builds seven small C modules when a C compiler is there; without one the install goes on
and the same steps run in numpy and Python: the same results, slower (the 1 M-packet bench takes
~1.4 times as long). Nothing else tells the two installs apart, and a source tree whose ``*.so``
files were removed (``git clean -fdx``) silently runs the fallbacks, so ``kscc-traffic --version``
and ``bench/run.py`` say how many are built (:func:`summary`).
"""
from __future__ import annotations

import importlib

#: (module, what it does instead of its Python fallback); setup.py's Extension list, in its order
#: (tests/test_compiled.py keeps the two the same)
PARTS: tuple[tuple[str, str], ...] = (
    ("kscc_traffic.capture._walk", "pcap/pcapng record walk"),
    ("kscc_traffic.capture._headers", "fixed-offset header decode"),
    ("kscc_traffic.capture._ranges", "payload byte-range copies"),
    ("kscc_traffic._tcpstate", "TCP endpoint states and history"),
    ("kscc_traffic._keyhash", "flow-key hashes and uids"),
    ("kscc_traffic._textcodes", "text column codes"),
    ("kscc_traffic.protocols._tlswalk", "TLS record walk"),
)


def missing() -> list[str]:
    """Names (``kscc_traffic.`` left off) of the compiled parts that cannot be imported here, in
    :data:`PARTS` order; empty when all are built. Never raises: a module that fails to load
    for any reason (not built, built for another Python, damaged) counts as missing, as the
    callers' own ``try: import ... except ImportError`` would fall back."""
    out = []
    for name, _ in PARTS:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - any failure means the fallback runs
            out.append(name.removeprefix("kscc_traffic."))
    return out


def summary() -> str:
    """One line for ``--version``: ``compiled parts: 7 of 7 built``, or which are missing and
    what that means, e.g. ``compiled parts: 5 of 7 built (missing: _keyhash, _textcodes):
    their Python fallbacks run (same results, slower); rebuild with a C compiler: pip install
    -e .`` (bench/run.py looks for the ``N of M built`` words)."""
    gone = missing()
    line = f"compiled parts: {len(PARTS) - len(gone)} of {len(PARTS)} built"
    if gone:
        line += (f" (missing: {', '.join(gone)}): their Python fallbacks run (same results, slower);"
                 " rebuild with a C compiler: pip install -e .")
    return line
