"""The exception tree of kscc-traffic.

::

    KsccTrafficError                 base of everything this package raises on purpose
    ├── CaptureError                 a capture file cannot be used at all (exit status 2)
    │   ├── UnsupportedFormat        not a pcap/pcapng file (wrong magic), or an unknown version
    │   ├── TruncatedCapture         the file ends inside its header, before any record
    │   ├── CorruptCapture           the header itself is damaged, or the file by a text-mode transfer
    │   └── CaptureAccessError       the file is there but cannot be opened or read (permissions, I/O)
    ├── RulesError                   a rules file cannot be loaded; names file, rule id and field
    ├── EngineError                  an optional engine (tshark, scapy live capture) is unusable
    └── WorkerError                  a second process of the analysis stopped before it was done
        └── TemporaryFolderError     a process cannot write its finished flows to the temporary folder

    CaptureWarning (a UserWarning)   what analyze() skipped in a damaged capture, one per line

Damage *after* the header is not an exception: the reader keeps everything readable and records
what it skipped in :class:`kscc_traffic.capture.stats.ReadStats` (with a warning line).
"""
from __future__ import annotations


class KsccTrafficError(Exception):
    """Base class of the errors kscc-traffic raises on purpose."""


class CaptureError(KsccTrafficError):
    """A capture file cannot be used at all."""


class UnsupportedFormat(CaptureError):
    """The file is not a pcap or pcapng capture (or a version we cannot read)."""


class TruncatedCapture(CaptureError):
    """The file ends inside its header, before the first record."""


class CorruptCapture(CaptureError):
    """The file header is damaged beyond use, or the whole file by a text-mode transfer (FTP
    ASCII mode: each LF byte written as CR LF; :mod:`kscc_traffic.capture.files`)."""


class CaptureAccessError(CaptureError):
    """The file is there but cannot be opened or read (Permission denied, an I/O error): not
    damage of the capture, so a file of a ring buffer fails as a file on its own does."""


class RulesError(KsccTrafficError):
    """A rules file is missing, not TOML, or fails validation."""


class EngineError(KsccTrafficError):
    """An optional engine (tshark/pyshark, live capture) cannot be used."""


class WorkerError(KsccTrafficError):
    """The second process of an analysis (:class:`kscc_traffic.finishing.Finisher`) stopped
    before it was done: killed, or out of memory."""


class TemporaryFolderError(WorkerError):
    """A process of the analysis cannot write its finished flows to the temporary folder (full,
    too small, a file size limit): a problem of the machine, not of the capture, so the run stops
    with it even under ``--lenient`` (which skips only captures that cannot be read)."""


class CaptureWarning(UserWarning):
    """Part of a capture was skipped (damage, unsupported link type…); the message says what."""
