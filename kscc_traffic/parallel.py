"""Several captures analysed at once, one process per capture, merged in the order given.

Each worker process analyses one file in bounded memory (:func:`kscc_traffic.analyze.open_analysis`)
and writes its finished flows, batch by batch, to a temporary file; the parent hands the batches
on in the order the files were given; each temporary file is deleted once read (or when its
result is dropped unread). So
``kscc-traffic analyze dir/*.pcap`` keeps every core busy and still writes one merged report whose
rows come file by file. A single file is analysed in the calling process (its progress is then
reported chunk by chunk).
"""
from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import pandas as pd

from .capture.stats import ReadStats
from .errors import CaptureError, KsccTrafficError, TemporaryFolderError
from .finishing import temp_folder_error
from .rules import RuleSet
from .text import path_text

__all__ = ["FileResult", "analyze_each", "default_jobs"]


@dataclass
class FileResult:
    """The analysis of one capture, as :func:`analyze_each` hands it out.

    ``batches()`` yields the flows (DataFrames with :data:`kscc_traffic.analyze.COLUMNS`);
    after it is exhausted ``stats`` (:class:`ReadStats`) and ``duplicates`` are complete.
    ``error`` is a one-line message when the file could not be analysed (then there are no
    batches and ``stats`` is None); ``temp_folder`` is True when that is because its worker
    could not write its finished flows to the temporary folder (the machine's problem, not the
    capture's: the message names the folder and says to make room or use ``-j 1``). ``name`` is the capture's name in this run (``capture``
    column, :func:`kscc_traffic.analyze.capture_names`).
    """

    path: Path
    error: Optional[str] = None
    stats: Optional[ReadStats] = None
    duplicates: int = 0
    _source: object = field(default=None, repr=False)
    name: str = ""
    temp_folder: bool = False

    def __del__(self) -> None:
        src = self._source
        if isinstance(src, str):
            _unlink(src)

    def batches(self) -> Iterator[pd.DataFrame]:
        """The worker's finished flow batches (DataFrames, or the texts it rendered), read back
        in order from its temporary file (deleted once read) or its pipe; once only."""
        src, self._source = self._source, None
        if src is None:
            return
        if isinstance(src, str):                    # a worker's temporary file
            try:
                with open(src, "rb") as f:
                    while True:
                        try:
                            yield pickle.load(f)
                        except EOFError:
                            break
            finally:
                _unlink(src)
            return
        try:
            yield from src.batches()                # analysed here, chunk by chunk
        except CaptureError as e:                   # (named as given, as before reading)
            from .analyze import as_given
            raise as_given(e, self.name, self.path) from None
        self.stats, self.duplicates = src.stats, src.duplicates


def default_jobs(n_files: int) -> int:
    """Worker processes for ``n_files`` captures: one per file, at most one per usable core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(n_files, cores))


def _message(path, e: BaseException, name: str | None = None) -> str:
    """The one-line error of a capture that failed (a reading error naming the capture ``name``
    names ``path`` as given, :func:`kscc_traffic.analyze.as_given`)."""
    if isinstance(e, CaptureError) and name:
        from .analyze import as_given
        return str(as_given(e, name, path))
    if isinstance(e, KsccTrafficError):
        return str(e)
    if isinstance(e, OSError):
        return f"{path_text(path)}: {e.strerror or e}"
    return f"{path_text(path)}: internal error ({type(e).__name__}: {e}); please report it with the capture"


def _open(path: Path, rules: RuleSet, engine: str, progress=None, chunk_bytes=None, name=None,
          worker: bool = False, render=None) -> FileResult:
    from .analyze import open_analysis
    try:
        run = open_analysis(path, rules, engine, progress=progress, chunk_bytes=chunk_bytes, name=name,
                            worker=worker, render=render)
    except Exception as e:  # noqa: BLE001 - every failure becomes the file's one-line error
        return FileResult(path, _message(path, e), name=name or "")
    return FileResult(path, _source=run, name=name or "")


class _Spool:
    """The worker's temporary file of finished flows: a write that fails (a full temporary folder,
    a file size limit) raises :class:`~kscc_traffic.errors.TemporaryFolderError` naming the
    folder, told apart from the capture's own read errors."""

    def __init__(self, folder: str, name: str) -> None:
        self.folder, self.name, self.path, self._f = folder, name, None, None
        try:
            fd, self.path = tempfile.mkstemp(prefix="kscc-traffic-", suffix=".flows", dir=folder)
            self._f = os.fdopen(fd, "wb")
        except OSError as e:
            raise self._error(e) from None

    def _error(self, e: OSError) -> TemporaryFolderError:
        return temp_folder_error(self.name, self.folder, e, "the process analysing it")

    def dump(self, batch) -> None:
        """Append one batch (pickled) to the file; :class:`TemporaryFolderError` when it cannot
        be written (a full disk)."""
        try:
            pickle.dump(batch, self._f, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as e:
            raise self._error(e) from None

    def close(self) -> None:
        """Close the file, its batches written; :class:`TemporaryFolderError` when that fails."""
        f, self._f = self._f, None
        if f is not None:
            try:
                f.close()
            except OSError as e:
                raise self._error(e) from None

    def discard(self) -> None:
        """Close the file without raising (its content no longer wanted: an error on the way)."""
        f, self._f = self._f, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
        if self.path:
            _unlink(self.path)


class _Terminated(BaseException):
    """SIGTERM in a worker (its parent is gone or asked it to stop)."""


_BUSY = False


def _worker_init() -> None:
    """In each worker: die with the parent (Linux ``PR_SET_PDEATHSIG``: a parent killed by
    SIGTERM/SIGKILL would otherwise leave its workers running), and turn SIGTERM into an
    exception so the worker's temporary file is removed."""
    import signal

    def stop(signum, frame):
        if _BUSY:
            raise _Terminated()     # _work removes its temporary file, then the worker exits
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent is already gone
        raise SystemExit(1)


def _work(path: str, rules: RuleSet, engine: str, tmpdir: str, chunk_bytes: int | None = None,
          name: str | None = None) -> tuple:
    """In a worker: analyse one file (named ``name``), batches to a temporary file. Returns
    (path, error message or None, stats, duplicates, temporary file, True when the error is the
    temporary folder's)."""
    from .analyze import open_analysis
    global _BUSY
    spool = None
    _BUSY = True
    try:
        run = open_analysis(path, rules, engine, chunk_bytes=chunk_bytes, name=name)
        spool = _Spool(tmpdir, name or path_text(path))
        for b in run.batches():
            spool.dump(b)
        spool.close()
        return path, None, run.stats, run.duplicates, spool.path, False
    except _Terminated:
        if spool:
            spool.discard()
        os._exit(143)
    except BaseException as e:  # noqa: BLE001
        if spool:
            spool.discard()
        return path, _message(path, e, name), None, 0, None, isinstance(e, TemporaryFolderError)
    finally:
        _BUSY = False


def _unlink(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def analyze_each(paths: list, rules: RuleSet, engine: str = "builtin", jobs: int | None = None,
                 progress: Optional[Callable[[int], None]] = None,
                 chunk_bytes: int | None = None, names: list[str] | None = None,
                 render=None) -> Iterator[FileResult]:
    """Analyse ``paths`` and yield one :class:`FileResult` per path, in the order given.
    A path may be a :class:`~kscc_traffic.capture.filesets.FileSet` (one capture of several
    files, analysed in one process).

    :param jobs: processes (default: one per usable core, at most one per path); 1, or a single
        path, analyses in this process; a single path with ``jobs`` 2 or more has its flows
        classified in a second process while this one reads (:class:`kscc_traffic.finishing.Finisher`:
        ~10 % less wall time, one more process in memory).
    :param render: ``render(flows)`` for the batches analysed in this process (see
        :func:`kscc_traffic.analyze.open_analysis`); the batches of workers come as DataFrames.
    :param progress: called with a number of file bytes just finished (chunk by chunk for a
        single file, file by file with workers).
    :param chunk_bytes: bytes of a capture read at a time (default
        :data:`kscc_traffic.chunked.CHUNK_BYTES`).
    :param names: the captures' names (default :func:`kscc_traffic.analyze.capture_names` of
        ``paths``: unique within the run, whatever ``jobs`` and the order of ``paths``).
    Errors never propagate: a file that cannot be analysed gives a result with ``error`` set.
    """
    from .analyze import capture_names
    from .capture.filesets import FileSet
    paths = [p if isinstance(p, FileSet) else Path(p) for p in paths]
    names = capture_names(paths) if names is None else list(names)
    # (a single capture given two processes: the second finishes its batches)
    finisher = len(paths) == 1 and engine == "builtin" and jobs is not None and jobs >= 2
    jobs = default_jobs(len(paths)) if jobs is None else max(1, jobs)
    if jobs == 1 or len(paths) <= 1:
        for p, name in zip(paths, names):
            done = [0]

            def step(nbytes: int, done=done) -> None:
                if progress is not None:
                    progress(nbytes - done[0])
                done[0] = nbytes

            yield _open(p, rules, engine, step, chunk_bytes, name, worker=finisher, render=render)
        return
    from concurrent.futures import ProcessPoolExecutor   # (here: ~3 ms of start-up a single capture never needs)

    tmpdir = tempfile.gettempdir()
    handed = 0
    with ProcessPoolExecutor(max_workers=min(jobs, len(paths)), initializer=_worker_init) as pool:
        futures = [pool.submit(_work, p if isinstance(p, FileSet) else str(p), rules, engine, tmpdir,
                               chunk_bytes, name)
                   for p, name in zip(paths, names)]
        try:
            for p, name, fut in zip(paths, names, futures):
                try:
                    _, error, stats, dups, tmp, temp_folder = fut.result()
                except Exception as e:  # noqa: BLE001 - a worker that died
                    error, stats, dups, tmp, temp_folder = _message(p, e), None, 0, None, False
                if progress is not None:
                    try:
                        progress(p.size() if isinstance(p, FileSet) else p.stat().st_size)
                    except OSError:
                        pass
                handed += 1
                yield FileResult(p, error, stats, dups, _source=tmp, name=name, temp_folder=temp_folder)
        finally:
            # stopped early: the results never handed out leave no temporary file behind
            for fut in futures[handed:]:
                fut.cancel()
                try:
                    tmp = fut.result()[4]
                except Exception:  # noqa: BLE001
                    continue
                if tmp:
                    _unlink(tmp)
