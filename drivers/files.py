"""Files replaced whole: a crash, a kill or a full disk leaves the old file or the new one, never half.

:func:`write_atomically` is the one way the workbench replaces a file it owns (a backup, a report,
the key file, the emulator's state, the spec's generated tables): a temporary file in the same
folder, written, flushed and fsync'ed, renamed over the old one with :func:`os.replace`, then the
folder fsync'ed so the rename itself survives a power cut.  On any failure the temporary file is
removed and the old file is untouched.

Failures are :class:`FileWriteError` (an :class:`OSError`, with the errno and strerror of the
cause, so ``except OSError`` keeps working), and :class:`DiskFull` when the cause is a full disk
or quota.  This module is the lowest layer that writes files; the emulator may import it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

#: errnos that mean "no room": the disk, or the user's quota, is full
FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class FileWriteError(OSError):
    """A file could not be written; the old file (if any) is as it was and no temporary file is left.

    ``errno``, ``strerror`` and ``filename`` are those of the cause; ``str()`` is one line for a user.
    """

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


class DiskFull(FileWriteError):
    """The disk (or the quota) is full: free some space or write elsewhere."""


def write_atomically(path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None) -> Path:
    """Replace ``path`` with ``data`` (``str`` is written as UTF-8); return the path.

    ``mode`` gives the file's permission bits; without it an existing file keeps its own and a new
    one gets what :func:`open` would give (0o666 less the umask).  The folder must exist.  Raises
    :class:`DiskFull` or :class:`FileWriteError`; anything else raised mid-way (an interrupt) still
    removes the temporary file first.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    directory = target.parent
    if mode is None:
        mode = _mode_of(target)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _error(exc, target) from exc
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise _error(exc, target) from exc
        raise
    fsync_folder(directory)
    return target


def fsync_folder(directory: str | os.PathLike[str]) -> None:
    """Make a rename in ``directory`` durable.  Not every file system lets a folder be fsync'ed;
    there the rename is as durable as that file system makes it, and nothing is raised."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _mode_of(target: Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` would, for every thread)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _error(exc: OSError, target: Path) -> FileWriteError:
    kind = DiskFull if exc.errno in FULL else FileWriteError
    code = exc.errno if exc.errno is not None else errno.EIO
    return kind(code, exc.strerror or str(exc) or type(exc).__name__, os.fspath(target))


__all__ = ["FULL", "DiskFull", "FileWriteError", "fsync_folder", "write_atomically"]
