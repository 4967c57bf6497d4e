"""The lock that lets one engine at a time work on a gangadir's jobs.

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
import time
from pathlib import Path

import anyio

from .._exceptions import RepositoryError, RepositoryLockedError

__all__ = ["EngineLock"]

PATIENCE = 3.0
"""Seconds to wait for a lock held by an engine that is ending: a process killed while it
forks leaves the lock to its child for the instant until that child runs its program."""


class EngineLock:
    """The exclusive lock on one repository's directory (see the module's documentation)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

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

    def _try(self) -> None:
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
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

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
