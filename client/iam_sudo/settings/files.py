"""Files iam-sudo writes (credentials, config, caches): atomic, 0600, under a lock.

Every writer follows one discipline, so that a crash or a concurrent writer can neither
leave a half-written file nor lose another writer's change: hold an exclusive lock on a
sidecar ``NAME.lock``, read, write a temporary file beside the target, fsync it, and
rename it over the target. Temporary files are only ever alive while their writer holds
the lock, so any found while holding it are a crashed writer's and are removed: a secret
in a leftover temporary file does not outlive the next write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
_TEMP_SUFFIX = ".tmp"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def resolve(path: Path) -> Path:
    """Where ``path`` really is: a symlinked file (dotfiles) is updated where it lives.

    Raises :class:`OSError` for a symlink loop (Python raises RuntimeError for it before 3.13).
    """
    try:
        return path.expanduser().resolve()
    except RuntimeError as error:
        raise OSError(f"symlink loop at {path}") from error


LOCK_TIMEOUT = 30.0  # seconds a writer waits for another before giving up
_LOCK_POLL = 0.05
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False if another process holds it."""
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES, errno.EDEADLK):
            return False
        raise
    return True


def mark_holder(fd: int) -> None:
    """Write this process's id into a lock file it holds, for :func:`lock_holder`."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)


def lock_holder(fd: int) -> str:
    """The process id written by whoever holds the lock file ``fd``, or ``unknown``."""
    return os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"


@contextlib.contextmanager
def locked(path: Path, wait_seconds: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path``.lock while ``path`` is read and replaced.

    A sidecar is locked because ``path`` itself is replaced, not rewritten. The lock file
    is never opened through a symlink (``O_NOFOLLOW``: ``ELOOP``), and a lock another
    process holds for more than ``wait_seconds`` (default :data:`LOCK_TIMEOUT`) raises
    :class:`TimeoutError` (an :class:`OSError`) naming that process: nothing waits forever.
    """
    wait_seconds = LOCK_TIMEOUT if wait_seconds is None else wait_seconds
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW, FILE_MODE)
    try:
        deadline = time.monotonic() + wait_seconds
        while not try_lock(fd):
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    errno.ETIMEDOUT,
                    f"{lock_path} is held by process {lock_holder(fd)} for more than "
                    f"{wait_seconds:g} s; wait for it or stop it",
                )
            time.sleep(_LOCK_POLL)
        mark_holder(fd)
        _remove_stale_temps(path)
        yield
    finally:
        os.close(fd)


def _remove_stale_temps(path: Path) -> None:
    """Remove temporary files a crashed writer left (only called with the lock held)."""
    prefix = _temp_prefix(path)
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if entry.name.startswith(prefix) and entry.name.endswith(_TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def read_text(path: Path) -> str:
    """The file's text exactly as stored (line endings kept), or "" if it does not exist."""
    try:
        with open(path, encoding="utf-8", newline="") as file:
            return file.read()
    except FileNotFoundError:
        return ""


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` atomically, mode 0600. Call it holding :func:`locked`."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    # mkstemp creates the file 0600, so the secret is never readable by others, not even briefly.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, FILE_MODE)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if sys.platform != "win32":
        # The rename is durable only once the directory entry is.
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
