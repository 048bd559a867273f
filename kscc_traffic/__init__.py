"""kscc-traffic: check captured traffic against the ports Kaspersky Security Center Cloud Console
documents.

The public API (everything else is private and may change)::

    analyze(path_or_paths, rules=None) -> pandas.DataFrame   # one row per flow, see COLUMNS (files or folders)
    analyze_file(path, rules=None, engine="builtin") -> Analysis   # one capture; engine "tshark" too
    analyze_files(paths, rules=None) -> Analysis             # flows + reader statistics
    read_flows(path) -> pandas.DataFrame                      # a --format csv/jsonl table read back, COLUMNS' dtypes
    load_rules(path=None) -> RuleSet                          # the documented purposes
    readiness(flows, rules=None) -> pandas.DataFrame          # one row per documented purpose
    dns_advice(flows, rules=None) -> dict | None              # what to change for DNS (no checklist row)
    read_frames / decode / build_flows / classify             # the pipeline's stages
    purpose_breakdown, host_status, server_names, attempts_over_time   # tables for pictures
    chart_verdicts, chart_volume, chart_timeline, chart_host_failures  # matplotlib figures
    style_readiness(checklist)                                # the checklist as a styled table
    style_table(table)                                        # any table, names from packets as text

The names are loaded on first use (PEP 562): ``import kscc_traffic`` alone costs a few
milliseconds, not the ~0.5 s of pandas, pyarrow and pydantic, so the command line starts at
once and can answer Ctrl-C from its first moment. ``from kscc_traffic import analyze`` and
``kscc_traffic.analyze(...)`` work as before; ``kscc_traffic.analyze`` and
``kscc_traffic.classify`` are the functions, whichever of their modules were imported first.
"""
from __future__ import annotations

import sys

#: True for type checkers (mypy, pyright and IDEs read a name ``TYPE_CHECKING`` so), False at run
#: time, without importing :mod:`typing`: ``python -m kscc_traffic`` imports this package before
#: its ``__main__`` can catch Ctrl-C, so it imports as little as possible
TYPE_CHECKING = False

# the exceptions cost nothing to import: here at once (``except kscc_traffic.CaptureError``)
from .errors import (CaptureError, CaptureWarning, CorruptCapture, EngineError, KsccTrafficError,
                     RulesError, TruncatedCapture, UnsupportedFormat)

if TYPE_CHECKING:  # what type checkers and IDEs see; the same names as _LAZY
    from .analyze import COLUMNS, Analysis, analyze, analyze_file, analyze_files, read_flows
    from .capture.decode import decode
    from .capture.files import read_frames
    from .classify import classify
    from .flows import FLOW_COLUMNS, build_flows
    from .plots import (attempts_over_time, chart_host_failures, chart_timeline, chart_verdicts,
                        chart_volume, host_status, purpose_breakdown, server_names, style_readiness,
                        style_table)
    from .report import dns_advice, readiness
    from .rules import RuleSet, load_rules

__all__ = [
    "COLUMNS", "FLOW_COLUMNS", "Analysis", "analyze", "analyze_file", "analyze_files", "read_flows", "decode",
    "read_frames", "build_flows", "classify", "readiness", "dns_advice", "load_rules", "RuleSet",
    "KsccTrafficError", "CaptureError", "UnsupportedFormat", "TruncatedCapture", "CorruptCapture",
    "RulesError", "EngineError", "CaptureWarning",
    "purpose_breakdown", "host_status", "server_names", "attempts_over_time", "chart_verdicts",
    "chart_volume", "chart_timeline", "chart_host_failures", "style_readiness", "style_table",
]
__version__ = "0.1.0"

#: public name -> the module (relative to this package) that defines it, imported on first use
_LAZY = {
    **dict.fromkeys(("COLUMNS", "Analysis", "analyze", "analyze_file", "analyze_files", "read_flows"), ".analyze"),
    "decode": ".capture.decode",
    "read_frames": ".capture.files",
    "classify": ".classify",
    **dict.fromkeys(("FLOW_COLUMNS", "build_flows"), ".flows"),
    **dict.fromkeys(("attempts_over_time", "chart_host_failures", "chart_timeline", "chart_verdicts",
                     "chart_volume", "host_status", "purpose_breakdown", "server_names",
                     "style_readiness", "style_table"), ".plots"),
    **dict.fromkeys(("readiness", "dns_advice"), ".report"),
    **dict.fromkeys(("RuleSet", "load_rules"), ".rules"),
}

#: public functions named as their own module: the package attribute is the function
_SHADOWED = frozenset(n for n, m in _LAZY.items() if m == "." + n)   # analyze, classify


# the loading on first use, out of type checkers' sight: to them the names above are plain
# imports, and a name not among them is an error, not something a __getattr__ may give
if not TYPE_CHECKING:
    def __getattr__(name: str):
        """A public name, imported from its module on first use (then a plain attribute)."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))

    class _Package(type(sys)):   # (types.ModuleType)
        """This package's module type: when the import system binds a freshly imported submodule
        named as a public function (``kscc_traffic.analyze``, ``kscc_traffic.classify``) on the
        package, the function is bound instead, as the eager ``from .analyze import analyze`` did:
        ``kscc_traffic.analyze`` stays the function even when some code imported the module first
        (the module itself is ``sys.modules["kscc_traffic.analyze"]``)."""

        def __setattr__(self, name: str, value) -> None:
            if (name in _SHADOWED and isinstance(value, type(sys))
                    and value.__name__ == f"{self.__name__}.{name}"):
                value = getattr(value, name)
            super().__setattr__(name, value)

    sys.modules[__name__].__class__ = _Package
