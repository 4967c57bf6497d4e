"""The gangadir's guards: it is its owner's alone, and one engine at a time works on its jobs.

:func:`claim_gangadir` creates the gangadir with mode 0700, or tightens one its owner left
open, so nothing in it (the repository, job outputs and environments, the service's files) can
be read, or planted, by another user; a gangadir that is not a directory of the user's own is
refused.

Two engines monitoring one repository would both adopt, resubmit and run the same subjobs. The
engine that submits to backends or monitors them holds an exclusive ``flock`` on
``<repository dir>/engine.lock`` for as long as it is open; the file records its pid for the
error another engine gets. The kernel drops the lock with the process, however it ends, so a
crashed engine never leaves its gangadir locked. Engines that only read (``monitoring=False``)
take it only when they first need a backend.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time
from pathlib import Path

import anyio

from .._exceptions import RepositoryError, RepositoryLockedError

__all__ = ["EngineLock", "claim_gangadir"]

PATIENCE = 3.0
"""Seconds to wait for a lock held by an engine that is ending: a process killed while it
forks leaves the lock to its child for the instant until that child runs its program."""


def claim_gangadir(gangadir: Path) -> None:
    """Make ``gangadir`` a directory only its owner can enter (see the module's documentation);
    raise RepositoryError naming the problem when it cannot be one."""
    try:
        gangadir.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = gangadir.stat()
    except (FileExistsError, NotADirectoryError):
        raise RepositoryError(f"the gangadir {gangadir} is not a directory; name a directory "
                              "(or a path where one can be made)") from None
    except OSError as exc:
        raise RepositoryError(f"cannot make the gangadir {gangadir}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise RepositoryError(f"the gangadir {gangadir} is not a directory; name a directory "
                              "(or a path where one can be made)")
    if info.st_uid != os.getuid():
        raise RepositoryError(f"the gangadir {gangadir} belongs to uid {info.st_uid}, not to you "
                              f"(uid {os.getuid()}); a gangadir must be its owner's alone")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(gangadir, 0o700)


class EngineLock:
    """The exclusive lock on one repository's directory (see the module's documentation)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def of(cls, gangadir: Path, user: str) -> EngineLock:
        """The lock of ``user``'s repository in ``gangadir``."""
        return cls(gangadir / "repository" / user / "engine.lock")

    @property
    def held(self) -> bool:
        return self._fd is not None

    async def acquire(self, patience: float = PATIENCE) -> None:
        """Take the lock, waiting up to ``patience`` seconds for another engine to let it go;
        then raise :class:`RepositoryLockedError` naming that engine. Taking it again while
        held is a no-op."""
        deadline = time.monotonic() + patience
        while True:
            try:
                self._try()
                return
            except RepositoryLockedError:
                if time.monotonic() >= deadline:
                    raise
            await anyio.sleep(0.05)

    def _try(self, *, claim: bool = True) -> None:
        if self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise RepositoryError(f"cannot open the engine lock {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            holder = f"engine (pid {pid})" if pid else "engine"
            raise RepositoryLockedError(
                f"another {holder} is already working on {self.path.parent}: one engine at a "
                "time submits and monitors a gangadir. Use that engine (or its daemon: "
                "ganga-async service start), or open this one with monitoring=False to read",
                pid=pid) from None
        except OSError as exc:
            os.close(fd)
            raise RepositoryError(f"cannot lock {self.path}: {exc}") from exc
        if claim:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def holder(self) -> int | None:
        """Whether another engine holds the lock now, without waiting or keeping it: its pid
        (0 when unknown), or None when the lock is free."""
        if self._fd is not None or not self.path.exists():
            return None
        try:
            self._try(claim=False)  # a look, not a claim: the file keeps the last holder's pid
        except RepositoryLockedError as exc:
            return exc.pid or 0
        except RepositoryError:
            return None
        self.release()
        return None

    def release(self) -> None:
        """Give the lock up (closing the file releases it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdecimal() else None
