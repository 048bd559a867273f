"""Only the optional compiled part; everything else is in pyproject.toml.

``kscc_traffic.capture._walk`` (the pcap / pcapng record-walk loops in C),
``kscc_traffic.capture._ranges`` (the many-ranges byte copies of the payload gathers),
``kscc_traffic.capture._headers`` (the fast path's fixed-offset header decode of ``decode._chunk``),
``kscc_traffic._tcpstate`` (the TCP endpoint state machine of ``flows._endpoint_states``, and
``flows.seq_extents`` / ``flows.history_codes``),
``kscc_traffic._keyhash`` (the flow-key hash rounds and uid digits of ``flows._mix`` / ``flows._uid``),
``kscc_traffic._textcodes`` (the coding of text columns of ``classify._str_codes``) and
``kscc_traffic.protocols._tlswalk`` (the TLS record walk of ``protocols.tls_batch``) are optional:
where they cannot be built (no C compiler), the install goes on and the same loops run in Python
(same results, slower).
"""
import importlib.util
import os

from setuptools import Extension as _Extension, setup

# kscc_traffic/compiled.py alone (stdlib only; the package itself needs numpy): its source_digest
_HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("_kscc_compiled", os.path.join(_HERE, "kscc_traffic", "compiled.py"))
_compiled = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_compiled)


def Extension(name, sources, **kw):
    """setuptools' Extension, built with its C source's digest as ``source_sha256``
    (``kscc_traffic.compiled.stale`` compares it with the source's text now)."""
    digest = _compiled.source_digest(os.path.join(_HERE, sources[0]))
    return _Extension(name, sources, define_macros=[("KSCC_SOURCE_SHA256", f'"{digest}"')], **kw)


setup(ext_modules=[Extension("kscc_traffic.capture._walk", ["kscc_traffic/capture/_walk.c"],
                             optional=True),
                   Extension("kscc_traffic.capture._headers", ["kscc_traffic/capture/_headers.c"],
                             optional=True),
                   Extension("kscc_traffic.capture._ranges", ["kscc_traffic/capture/_ranges.c"], depends=["kscc_traffic/_buffers.h"],
                             optional=True),
                   Extension("kscc_traffic._tcpstate", ["kscc_traffic/_tcpstate.c"], depends=["kscc_traffic/_buffers.h"],
                             optional=True),
                   Extension("kscc_traffic._keyhash", ["kscc_traffic/_keyhash.c"], depends=["kscc_traffic/_buffers.h"],
                             optional=True),
                   Extension("kscc_traffic._textcodes", ["kscc_traffic/_textcodes.c"], depends=["kscc_traffic/_buffers.h"],
                             optional=True),
                   Extension("kscc_traffic.protocols._tlswalk", ["kscc_traffic/protocols/_tlswalk.c"],
                             depends=["kscc_traffic/_buffers.h"], optional=True)])
