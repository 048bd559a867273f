"""kscc-traffic: check captured traffic against the ports Kaspersky Security Center Cloud Console
documents.

The public API (everything else is private and may change)::

    analyze(path_or_paths, rules=None) -> pandas.DataFrame   # one row per flow, see COLUMNS
    analyze_files(paths, rules=None) -> Analysis             # flows + reader statistics
    load_rules(path=None) -> RuleSet                          # the documented purposes
    readiness(flows, rules) -> pandas.DataFrame               # one row per documented purpose
    read_frames / decode / build_flows / classify             # the pipeline's stages
    purpose_breakdown, host_status, server_names, attempts_over_time   # tables for pictures
    chart_verdicts, chart_volume, chart_timeline, chart_host_failures  # matplotlib figures
    style_readiness(checklist)                                # the checklist as a styled table
"""
from .analyze import COLUMNS, Analysis, analyze, analyze_file, analyze_files
from .capture.decode import decode
from .capture.files import read_frames
from .classify import classify
from .errors import (CaptureError, CaptureWarning, CorruptCapture, EngineError, KsccTrafficError,
                     RulesError, TruncatedCapture, UnsupportedFormat)
from .flows import FLOW_COLUMNS, build_flows
from .plots import (attempts_over_time, chart_host_failures, chart_timeline, chart_verdicts, chart_volume,
                    host_status, purpose_breakdown, server_names, style_readiness)
from .report import readiness
from .rules import RuleSet, load_rules

__all__ = [
    "COLUMNS", "FLOW_COLUMNS", "Analysis", "analyze", "analyze_file", "analyze_files", "decode",
    "read_frames", "build_flows", "classify", "readiness", "load_rules", "RuleSet",
    "KsccTrafficError", "CaptureError", "UnsupportedFormat", "TruncatedCapture", "CorruptCapture",
    "RulesError", "EngineError", "CaptureWarning",
    "purpose_breakdown", "host_status", "server_names", "attempts_over_time", "chart_verdicts",
    "chart_volume", "chart_timeline", "chart_host_failures", "style_readiness",
]
__version__ = "0.1.0"
