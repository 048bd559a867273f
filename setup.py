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
from setuptools import Extension, setup

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
