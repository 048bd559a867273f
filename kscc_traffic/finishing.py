"""The last step of a chunked reading, in order, here or in a second process.

A chunked reading (:mod:`kscc_traffic.chunked`) finds, batch by batch, the flows that can no longer
grow; what is left to do with them (classify, the output's columns and dtypes:
:func:`kscc_traffic.analyze.finish_flows`, and maybe the report's text: ``render``) depends on those
rows alone. :class:`Finisher` does it either at once in the calling process, or in one worker
process while the caller reads and decodes the next chunk (``analyze --jobs 2`` for one capture):
on two cores this takes 8-15 % off the wall time of a large capture (the reader stays the
bottleneck), for ~100 MiB more resident memory on the benchmark (less in PSS: the two share their
modules), more when a batch holds many small flows (its rows are copied to the worker: 1 M
one-datagram UDP flows, 382 -> 834 MiB; break-it 21 F5). The results come out in the order the
batches went in, whichever way.
"""
from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections import deque
from typing import TYPE_CHECKING, Callable, Iterator, Optional

import pandas as pd

from .errors import TemporaryFolderError, WorkerError
from .rules import RuleSet
from .text import path_text

if TYPE_CHECKING:   # (multiprocessing is imported when a worker is started: a few ms of start-up otherwise)
    from concurrent.futures import Future, ProcessPoolExecutor

__all__ = ["Finisher", "MAX_WAITING", "temp_folder_error"]

#: batches handed to the worker and not yet handed out: the caller goes on reading while the worker
#: finishes, but never runs ahead by more than this many batches (each waiting batch is memory)
MAX_WAITING = 2


def _finish(flows: pd.DataFrame, rules: RuleSet, name: str, capture_end_ns: Optional[int],
            render: Optional[Callable], judged=None):
    from .analyze import finish_flows
    out = finish_flows(flows, rules, name, capture_end_ns, judged)
    return render(out) if render is not None else out


#: in the worker process: the analysis's rules (inherited when it was forked: one object from batch
#: to batch) and its judgements (:class:`kscc_traffic.classify.JudgementCache`), kept from batch to
#: batch as :class:`Finisher` keeps them when finishing at once (:func:`_worker_start`)
_worker_state: dict = {}


def _finish_to_file(folder: str, flows: pd.DataFrame, rules: Optional[RuleSet], name: str,
                    capture_end_ns: Optional[int], render: Optional[Callable]) -> str:
    """In the worker: :func:`_finish`, its result pickled to a new file in ``folder``; returns the
    file's path. ``rules`` None: the worker's own (:data:`_worker_state`), judged with its
    judgements of the earlier batches (the same results as judging each batch anew). (A result
    of megabytes sent back through the executor's pipe by a worker killed half-way through would
    leave the reading side waiting forever for the rest; a path is one small write.)

    :raises kscc_traffic.errors.TemporaryFolderError: the file cannot be written (a full or small
        temporary folder, a file size limit), said as such, not as the report's output failing.
    """
    judged = None
    if rules is None:
        rules, judged = _worker_state["rules"], _worker_state["judged"]
    out = _finish(flows, rules, name, capture_end_ns, render, judged)
    path = None
    try:
        fd, path = tempfile.mkstemp(prefix="batch-", suffix=".pickle", dir=folder)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(out, f, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as e:
        if path is not None:
            try:
                os.unlink(path)
            except OSError:
                pass
        raise temp_folder_error(name, folder, e, "the second process") from None
    return path


def temp_folder_error(name: str, folder: str, e: OSError, who: str) -> TemporaryFolderError:
    """The error of a process (``who``) that cannot write its finished flows for capture ``name``
    to the temporary ``folder`` (``e``: why): it names the folder and says what to do."""
    return TemporaryFolderError(f"{name or 'capture'}: {who} cannot write its finished flows to {path_text(folder)} "
                                f"({e.strerror or e}); make room there (TMPDIR chooses the folder) or analyse with -j 1")


def _worker_start(folder: str, parent: int, rules: Optional[RuleSet] = None) -> None:
    """In the worker, first: as :func:`kscc_traffic.parallel._worker_init` (it dies with its
    parent, Ctrl-C is the parent's); and when the parent is gone (killed: ``PR_SET_PDEATHSIG``
    sends SIGTERM: :func:`_dead`), the batches' folder goes with the worker, as nobody else can
    remove it; a SIGTERM while the parent lives (sent to the process group) leaves it to the
    parent. ``rules``: the analysis's (the parent's object, inherited by the fork), kept in
    :data:`_worker_state` with an empty judgement cache for :func:`_finish_to_file`."""
    import signal
    import time
    from .classify import JudgementCache
    from .parallel import _worker_init
    _worker_init()
    if rules is not None:
        _worker_state.update(rules=rules, judged=JudgementCache())

    def stop(signum, frame):
        # (not getppid(): the parent's other threads, still exiting, stand in for it a moment)
        for _ in range(20):
            if _dead(parent):
                shutil.rmtree(folder, ignore_errors=True)
                break
            time.sleep(0.01)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _dead(pid: int) -> bool:
    """The process ``pid`` is gone or a zombie (read in Linux's ``/proc``; always False on a
    system without it, where the worker then leaves the folder to its parent)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return os.path.isdir("/proc/self")


class Finisher:
    """Finishes batches of flows in the order they are given.

    :param rules: the documented purposes (:func:`kscc_traffic.analyze.finish_flows`).
    :param name: the capture's name (``capture`` column).
    :param render: when given and there is a worker, ``render(flows)`` (a picklable callable) is
        applied to each finished batch in the worker and its result is handed out instead of the
        DataFrame (e.g. the report's text: :class:`kscc_traffic.output.Render`); without a worker
        the DataFrames are handed out (the caller writes them as it would the rendered ones).
    :param worker: finish in one worker process, forked (born with this process's modules
        imported and no re-import of the caller's ``__main__``, as the workers of
        :func:`kscc_traffic.parallel.analyze_each`; it ignores Ctrl-C and dies with its parent:
        :func:`kscc_traffic.parallel._worker_init`). Where processes cannot be forked (not Linux
        or another Unix) and when False: here, at once.

    Use :meth:`put` for each batch (it yields what is done), then :meth:`drain`; :meth:`close` (also
    a context manager) stops the worker, dropping what was not handed out.
    """

    def __init__(self, rules: RuleSet, name: str = "", render: Optional[Callable] = None,
                 worker: bool = False) -> None:
        self.rules, self.name, self.render = rules, name, None
        #: this analysis's judgements, kept from batch to batch (:func:`kscc_traffic.classify.classify`)
        #: when finishing here (a worker keeps its own: :func:`_worker_start`)
        from .classify import JudgementCache
        self.judged = JudgementCache()
        self._waiting: deque[Future] = deque()
        self._pool: Optional[ProcessPoolExecutor] = None
        self._folder: Optional[str] = None
        if worker:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
        if worker and "fork" in multiprocessing.get_all_start_methods():
            self._folder = tempfile.mkdtemp(prefix="kscc-traffic-")
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_worker_start,
                                             initargs=(self._folder, os.getpid(), rules))
            self._pool.submit(int)      # (forked now: what this process holds at this moment is shared)
            self.render = render

    def put(self, flows: pd.DataFrame, capture_end_ns: Optional[int] = None) -> Iterator:
        """Finish ``flows`` (rows of ``analyze_batch(finish=False).flows``; ``capture_end_ns`` when
        they are the capture's last); yields the finished batches that are ready to be handed out
        (at once without a worker; with one, the oldest once more than :data:`MAX_WAITING` wait).

        :raises Exception: what finishing raised (in the worker: the same exception, pickled back);
            :class:`kscc_traffic.errors.WorkerError` when the worker died (killed, out of memory).
        """
        if self._pool is None:
            yield _finish(flows, self.rules, self.name, capture_end_ns, self.render, self.judged)
            return
        from concurrent.futures.process import BrokenProcessPool
        try:
            # (the rules not sent: the worker has them from the fork, and keeps its judgements)
            self._waiting.append(self._pool.submit(_finish_to_file, self._folder, flows, None,
                                                   self.name, capture_end_ns, self.render))
        except BrokenProcessPool as e:
            raise self._stopped() from e
        while len(self._waiting) > MAX_WAITING:
            yield self._result(self._waiting.popleft())

    def drain(self) -> Iterator:
        """The finished batches still waiting, in order."""
        while self._waiting:
            yield self._result(self._waiting.popleft())

    def _result(self, fut: Future):
        from concurrent.futures.process import BrokenProcessPool
        try:
            path = fut.result()
        except BrokenProcessPool as e:
            raise self._stopped() from e
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        finally:
            os.unlink(path)

    def _stopped(self) -> WorkerError:
        return WorkerError(f"{self.name or 'capture'}: the process classifying its flows stopped "
                           "(killed, or out of memory?); analyse it again, with -j 1 to use one process")

    def close(self) -> None:
        """Stop the worker (if any); batches not handed out are dropped."""
        pool, self._pool = self._pool, None
        self._waiting.clear()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._folder is not None:        # (the batches' files not handed out)
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> "Finisher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
