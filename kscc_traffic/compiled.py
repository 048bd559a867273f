"""Which of the optional compiled parts this installation has.

setup.py builds seven small C modules when a C compiler is there; without one the install goes on
and the same steps run in numpy and Python: the same results, slower (the 1 M-packet bench takes
~1.4 times as long). Nothing else tells the two installs apart, and a source tree whose ``*.so``
files were removed (``git clean -fdx``) silently runs the fallbacks, so ``kscc-traffic --version``
and ``bench/run.py`` say how many are built (:func:`summary`).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re

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


#: ``#include "…"`` lines of a C source (the headers beside it that it is built from)
_INCLUDE = re.compile(rb'^\s*#\s*include\s+"([^"]+)"', re.M)


def source_digest(source: str) -> str:
    """SHA-256 (64 hex digits) of a C source file's bytes followed by those of each header it
    includes (``#include "…"``, relative to its folder, in order; absent ones left out): what
    setup.py builds into each compiled part as ``source_sha256``, so :func:`stale` can tell an
    edited source from one whose time alone changed (``touch``, a ``git checkout`` there and
    back). Raises OSError when ``source`` cannot be read."""
    import hashlib
    digest = hashlib.sha256()
    for path in _source_files(source):
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def _source_files(source: str) -> list[str]:
    """``source`` (a C file) and the headers beside it that it includes (``#include "…"``,
    relative to its folder, in order; absent ones left out). Raises OSError when ``source``
    cannot be read."""
    folder = os.path.dirname(source)
    with open(source, "rb") as f:
        text = f.read()
    headers = (os.path.normpath(os.path.join(folder, inc.decode("utf-8", "replace"))) for inc in _INCLUDE.findall(text))
    return [source, *(h for h in headers if os.path.exists(h))]


def stale() -> list[str]:
    """Names (``kscc_traffic.`` left off) of the compiled parts, in :data:`PARTS` order, that were
    built from another text of their C source or a header it includes (``#include "…"``): built
    before a ``git pull`` or an edit changed the source, so they run the old C steps while the
    Python beside them is new (the results may differ from the fallbacks'); rebuilt by ``pip
    install -e .`` or ``python setup.py build_ext --inplace``. Only where the source sits beside
    the built file (a source tree, an editable install): empty for an installed wheel, and for
    parts not built (:func:`missing`). A source newer than its build (modification times, s, by
    more than :data:`STALE_SLACK_S`) is stale unless the part carries the :func:`source_digest`
    it was built from (``source_sha256``, setup.py) and that is the source's digest now; a part
    built without it is judged by the times alone. Never raises."""
    out = []
    for name, _ in PARTS:
        try:
            spec = importlib.util.find_spec(name)
            built = spec.origin if spec is not None else None
            if not built or not built.endswith((".so", ".pyd")):
                continue
            folder = os.path.dirname(built)
            source = os.path.join(folder, name.rsplit(".", 1)[1] + ".c")
            if not os.path.exists(source):
                continue
            newest = max(os.stat(path).st_mtime for path in _source_files(source))
            if newest <= os.stat(built).st_mtime + STALE_SLACK_S:
                continue
            if _built_from(name) == source_digest(source):
                continue                    # (only the times changed: the same text)
            out.append(name.removeprefix("kscc_traffic."))
        except Exception:  # noqa: BLE001 - a check of the install must not stop a run
            continue
    return out


def _built_from(name: str) -> str:
    """The ``source_sha256`` a compiled part was built with, '' when it has none (built without
    setup.py's digest) or cannot be imported."""
    try:
        return str(getattr(importlib.import_module(name), "source_sha256", "") or "")
    except Exception:  # noqa: BLE001 - counted by missing()
        return ""


#: a source counts as newer than its build beyond this many seconds only (distutils copies an
#: in-place build with its time cut to whole seconds; a clone and its build may share a second)
STALE_SLACK_S = 2.0

#: the advice of :func:`stale_line`
REBUILD = "rebuild them: pip install -e . (or python setup.py build_ext --inplace)"


def stale_line() -> str:
    """One line naming the :func:`stale` compiled parts and the rebuild (:data:`REBUILD`),
    '' when none is: the CLI says it as a ``Warning:`` before analysing."""
    old = stale()
    if not old:
        return ""
    return (f"compiled parts older than their C source (built before the source changed): {', '.join(old)}: "
            f"their old steps run beside the new Python, results may differ; {REBUILD}")


def summary() -> str:
    """One line for ``--version``: ``compiled parts: 7 of 7 built``, or which are missing and
    what that means, e.g. ``compiled parts: 5 of 7 built (missing: _keyhash, _textcodes):
    their Python fallbacks run (same results, slower); rebuild with a C compiler: pip install
    -e .``; parts built before their source changed (:func:`stale`) are named after it (bench/run.py
    looks for the ``N of M built`` words)."""
    gone = missing()
    line = f"compiled parts: {len(PARTS) - len(gone)} of {len(PARTS)} built"
    if gone:
        line += (f" (missing: {', '.join(gone)}): their Python fallbacks run (same results, slower);"
                 " rebuild with a C compiler: pip install -e .")
    old = stale()
    if old:
        line += f" (older than their C source: {', '.join(old)}: {REBUILD})"
    return line
