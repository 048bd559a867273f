"""Alternative packet engines: other ways of turning captured bytes into
:class:`~kscc_traffic.capture.packets.Packets`, so the rest of the pipeline (flows, inspection,
names, classification, report) is shared.

- ``builtin`` (default): :func:`kscc_traffic.capture.files.read_frames` +
  :func:`kscc_traffic.capture.decode.decode`, pure Python/numpy.
- ``tshark``: Wireshark's dissectors (:mod:`kscc_traffic.engines.tshark`); needs Wireshark's
  ``tshark`` (files) and ``dumpcap`` + pyshark (live capture).
"""
from __future__ import annotations

#: engine names accepted by ``analyze --engine``
FILE_ENGINES = ("builtin", "tshark")
#: engine names accepted by ``live --engine``
LIVE_ENGINES = ("scapy", "tshark")

__all__ = ["FILE_ENGINES", "LIVE_ENGINES"]
