"""Where a report file goes: replaced atomically when it is a regular file (or does not exist
yet), written in place when it is anything else.

A regular file (or a new name) is written to a temporary file in the same folder
(``.NAME.XXXX.tmp``) and renamed over the name at the end: readers never see half a report, and a
run that fails or is interrupted leaves the previous file as it was (and no temporary file). A
symbolic link is written through (its target gets the report, the link stays a link, as with
``>`` in a shell). A device (``/dev/null``, ``/dev/stdout``), a FIFO or a socket is opened and
written in place: renaming over it would replace the node itself (``/dev/full`` turned into a
regular file when run as root).

No heavy imports here.
"""
from __future__ import annotations

import errno
import io
import os
import stat
import tempfile
from typing import IO, Optional

from .text import path_text

__all__ = ["ReportFile", "write_all", "LARGE_WRITE", "kernel_file_system", "KERNEL_FILE_SYSTEMS"]

#: texts at least this long are written by :func:`write_all` straight to the binary buffer
LARGE_WRITE = 8192


class ReportFile:
    """One output file of a run: :meth:`open` it, write, then :meth:`commit` (the report is
    complete) or :meth:`discard` (failed or interrupted).

    ``atomic`` says how it is written (see the module docstring): True for a regular file or a
    path that does not exist yet, False for a symbolic link (written through to its target), a
    device, a FIFO or a socket.

    :param path: the path given (``str`` or ``os.PathLike``).
    :raises OSError: from :meth:`open` (missing folder, no permission, name too long…) and from
        :meth:`commit` (the rename, or the final flush and close: a full disk).
    """

    def __init__(self, path) -> None:
        self.path = os.fspath(path)
        try:
            st = os.lstat(self.path)
        except OSError:          # absent; or unreachable (ENOTDIR, ENAMETOOLONG): open() says why
            st = None
        self.atomic = st is None or stat.S_ISREG(st.st_mode)
        #: the permission bits the report file gets: an existing file's own, else 0666 less the umask
        self._mode = stat.S_IMODE(st.st_mode) if st is not None and self.atomic else None
        self._tmp: Optional[str] = None
        self.stream: Optional[IO[str]] = None

    def open(self, newline: Optional[str] = "") -> IO[str]:
        """A text stream (UTF-8) to write the report to.

        :raises OSError: for an existing file this process may not write, what opening it for
            writing says (EACCES: ``0444``, or another user's; a shell's ``>`` refuses it too,
            although the folder would let the new file be renamed over it; EROFS, EPERM: an
            immutable file); the errors of making the file (see the class).
        """
        if self._mode is not None:
            self._check_writable()
        if self.atomic:
            folder = os.path.dirname(self.path) or "."
            try:
                # the name cut so that the temporary name stays within NAME_MAX (255) too
                fd, self._tmp = tempfile.mkstemp(prefix="." + os.path.basename(self.path)[:200] + ".",
                                                 suffix=".tmp", dir=folder)
            except OSError as e:
                if self._mode is None or e.errno == errno.ENOENT:
                    raise _no_new_file(e, folder, self._mode is not None) from e
                kind = kernel_file_system(folder)
                if kind is not None:     # (root: /sys refuses new files, but its own take writes)
                    raise OSError(e.errno, f"folder {path_text(folder)} is on {kind}, a kernel file system: its "
                                           "files are the kernel's settings, not reports") from e
                # an existing file in a folder where no file can be made (a writable file in a
                # read-only folder): written in place, as before
                self.atomic = False
                self.stream = open(self.path, "w", encoding="utf-8", newline=newline)
                return self.stream
            try:
                self.stream = os.fdopen(fd, "w", encoding="utf-8", newline=newline)
            except BaseException:
                os.close(fd)
                self._remove_tmp()
                raise
        else:
            self.stream = open(self.path, "w", encoding="utf-8", newline=newline)
        return self.stream

    def _check_writable(self) -> None:
        """Open the existing regular file for writing and close it again (not truncated: its
        content stays), so that what would stop a shell's ``>`` stops the report before any work."""
        try:
            # (O_NOCTTY, O_CLOEXEC: POSIX only)
            os.close(os.open(self.path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)))
        except OSError as e:
            if e.errno == errno.EACCES:
                raise OSError(e.errno, f"no permission to write the file (its permissions: "
                                       f"{self._mode:04o}); remove it or make it writable first") from e
            raise OSError(e.errno, e.strerror) from e

    def commit(self) -> None:
        """The report is complete: flush, close, and (atomic) give the temporary file the
        permissions of the file it replaces (a new file: 0666 less the umask) and rename it over
        the path."""
        stream, self.stream = self.stream, None
        try:
            if stream is not None:
                stream.flush()
                stream.close()
            if self._tmp is not None:
                mode = self._mode
                if mode is None:
                    mask = os.umask(0)
                    os.umask(mask)
                    mode = 0o666 & ~mask
                os.chmod(self._tmp, mode)
                os.replace(self._tmp, self.path)
                self._tmp = None
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """The report is not complete: close the stream (errors ignored) and remove the temporary
        file (atomic: the path keeps what it held before). Returns nothing; safe to call twice."""
        stream, self.stream = self.stream, None
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


#: file system types (``/proc/self/mountinfo``) whose files are the kernel's settings or views
KERNEL_FILE_SYSTEMS = frozenset(("sysfs", "proc", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs",
                                 "configfs", "bpf", "pstore", "efivarfs", "fusectl", "binfmt_misc", "selinuxfs"))


def kernel_file_system(folder: str) -> Optional[str]:
    """The type of the file system ``folder`` is on (e.g. ``"sysfs"``) when it is one of
    :data:`KERNEL_FILE_SYSTEMS`, else None (also where Linux's ``/proc/self/mountinfo`` cannot be
    read, or ``folder`` cannot be stat'ed). Read only on an error path: one file read."""
    try:
        dev = os.stat(folder).st_dev
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    want = f"{os.major(dev)}:{os.minor(dev)}"
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[2] == want and " - " in line:
            kind = line.split(" - ", 1)[1].split()[0]
            return kind if kind in KERNEL_FILE_SYSTEMS else None
    return None


def _no_new_file(e: OSError, folder: str, replacing: bool) -> OSError:
    """The error of a temporary file that cannot be made in ``folder``, its ``strerror`` saying
    why in words (the caller puts it after ``PATH: cannot write:``) rather than the bare system
    text, which names no folder and misleads for a kernel file system: ``/proc`` answers
    ENOENT ("No such file or directory") to the creation of any file, also beside an existing
    one (``-o /proc/version``). ``replacing``: the path names an existing regular file (which
    is replaced by the new file, so that is said too). Same errno as ``e``."""
    where = path_text(folder)
    if e.errno == errno.ENOENT and not os.path.isdir(folder):
        why = f"folder {where} does not exist"
    elif e.errno == errno.ENOENT:        # the folder is there: a file system that makes no files
        why = f"folder {where} does not allow creating a file"
    elif e.errno == errno.EACCES:
        why = f"no permission to create a file in folder {where}"
    elif e.errno == errno.EROFS:
        why = f"folder {where} is on a read-only file system"
    else:                                # EPERM (an immutable folder), ENOSPC, EDQUOT, EMFILE…
        why = f"cannot create a file in folder {where}: {e.strerror or e}"
    if replacing:
        why += "; the report replaces the file with a new one written beside it"
    return OSError(e.errno, why)


def write_all(out: IO[str], text: str) -> None:
    """``out.write(text)``, but a long text written to a buffered text stream (``sys.stdout``, a
    file) is written whole or fails: CPython's buffered writer may return a short count without
    an error when the reader of a pipe goes away in the middle of one large write (the rest is
    then dropped silently, and the run ended as if the whole report was read). Here the rest is
    written again, so that the closed pipe raises :class:`BrokenPipeError`.

    :raises OSError: the stream cannot be written (BrokenPipeError: its reader went away).
    """
    buf = getattr(out, "buffer", None)
    if len(text) < LARGE_WRITE or not isinstance(out, io.TextIOWrapper) or buf is None:
        out.write(text)
        return
    out.flush()
    data = memoryview(text.encode(out.encoding or "utf-8", out.errors or "strict"))
    done = 0
    while done < len(data):
        n = buf.write(data[done:])
        if n is None:                      # a non-blocking stream that could not take it now
            raise BlockingIOError(errno.EAGAIN, "the output cannot take more data now")
        if n <= 0:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        done += n
