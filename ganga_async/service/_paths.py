"""Where a gangadir's daemon keeps its files, and the checks that keep them the owner's.

::

    <gangadir>/service/          mode 0700: only the owner may enter
        daemon.pid               the daemon's pid; the daemon holds an exclusive flock on it
        socket                   the Unix socket, mode 0600
    <gangadir>/logs/service.log  the daemon's log, one JSON object per line
    <gangadir>/logs/service.err  what the daemon printed on stderr (a crash's traceback)

The flock is what tells a live daemon from a stale pid file: the kernel drops it when its
process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import socket
import stat
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .._exceptions import ServiceAccessError, ServiceError
from ..persistence.lock import claim_gangadir

__all__ = ["ServicePaths", "peer_uid", "private_append"]

_SUN_PATH_MAX = 107
"""Bytes a Unix socket path may have (108 with the final NUL)."""

_UCRED = struct.Struct("3i")
"""Linux's ``struct ucred``: pid, uid, gid."""


@dataclasses.dataclass(frozen=True)
class ServicePaths:
    """The daemon's files for one gangadir."""

    gangadir: Path

    @property
    def directory(self) -> Path:
        return self.gangadir / "service"

    @property
    def socket(self) -> Path:
        return self.directory / "socket"

    @property
    def pidfile(self) -> Path:
        return self.directory / "daemon.pid"

    @property
    def log(self) -> Path:
        return self.gangadir / "logs" / "service.log"

    @property
    def errlog(self) -> Path:
        return self.gangadir / "logs" / "service.err"

    def make_directory(self) -> None:
        """Create the service directory with mode 0700, or tighten one the owner left open;
        one owned by another user is refused (the gangadir too: see
        :func:`~ganga_async.persistence.lock.claim_gangadir`)."""
        claim_gangadir(self.gangadir)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = self.directory.stat()
        if info.st_uid != os.getuid():
            raise ServiceAccessError(
                f"{self.directory} belongs to uid {info.st_uid}, not to you (uid {os.getuid()}); "
                "use a gangadir of your own (--gangadir)")
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(self.directory, 0o700)
        self.log.parent.mkdir(parents=True, exist_ok=True)

    def check_directory(self) -> None:
        """Refuse to talk through a service directory that is not the user's own and private."""
        info = self.directory.stat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise ServiceAccessError(
                f"{self.directory} must belong to you (uid {os.getuid()}) with mode 0700; it has "
                f"uid {info.st_uid} and mode {stat.S_IMODE(info.st_mode):o}: remove it and start "
                "the service again")

    @contextlib.contextmanager
    def socket_address(self) -> Iterator[str]:
        """The socket's path for bind() or connect(); a path too long for a Unix socket is
        reached through ``/proc/self/fd/<directory fd>/socket`` instead."""
        path = str(self.socket)
        if len(os.fsencode(path)) <= _SUN_PATH_MAX:
            yield path
            return
        fd = os.open(self.directory, os.O_PATH | os.O_DIRECTORY)
        try:
            yield f"/proc/self/fd/{fd}/{self.socket.name}"
        finally:
            os.close(fd)

    def running_pid(self) -> int | None:
        """The pid of the daemon holding the pid file's lock, or None when none does."""
        try:
            fd = os.open(self.pidfile, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return read_pid(fd) or -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def read_pid(fd: int) -> int | None:
    """The pid written in an open pid file, or None if it holds none."""
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def peer_uid(sock: socket.socket) -> tuple[int, int]:
    """The uid and pid of the process at the other end of a connected Unix socket, as the
    kernel recorded them when it connected (SO_PEERCRED)."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except OSError as exc:
        raise ServiceError(f"cannot read the peer's credentials: {exc}") from exc
    pid, uid, _gid = _UCRED.unpack(creds)
    return uid, pid


def private_append(path: Path, *, binary: bool = False) -> IO[Any]:
    """``path`` opened to append, created 0600, never through a symbolic link (one another user
    planted would send the daemon's log, or its errors, wherever they chose)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ServiceError(f"cannot open {path} to append: {exc.strerror}"
                           + (" (it is a symbolic link)" if exc.errno == errno.ELOOP else "")) from None
    return os.fdopen(fd, "ab" if binary else "a")
