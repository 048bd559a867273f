"""Only the optional compiled part; everything else is in pyproject.toml.

``kscc_traffic.capture._walk`` (the pcap / pcapng record-walk loops in C) is optional: where it
cannot be built (no C compiler), the install goes on and the reader uses the same loops in
Python (same results, slower).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("kscc_traffic.capture._walk", ["kscc_traffic/capture/_walk.c"],
                             optional=True)])
