"""Starting a daemon in the background, and finding one that runs.

``ganga-async service start`` (and a client that finds no daemon) spawns ``ganga-async
service start --foreground`` as a new session, hands it a pipe, and waits until the daemon
writes ``ready <pid>`` (or ``error: ...``) on it, or exits.
"""

from __future__ import annotations

import os
import select
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import anyio
from anyio.abc import SocketAttribute, SocketStream

from .._exceptions import ServiceAccessError, ServiceError, ServiceRunningError
from ._paths import ServicePaths, peer_uid, private_append

__all__ = ["connect", "default_gangacmd", "spawn_daemon", "start_command"]


def default_gangacmd() -> str:
    """The command that runs ganga-async with this interpreter (works in any virtualenv)."""
    return shlex.join([sys.executable, "-m", "ganga_async.cli"])


async def connect(gangadir: Path) -> SocketStream | None:
    """A connection to the gangadir's daemon, or None when none listens.

    The service directory must be the user's own and private, and the process listening must
    run as the user (``SO_PEERCRED``), or :class:`ServiceAccessError` is raised.
    """
    paths = ServicePaths(gangadir)
    try:
        paths.check_directory()
    except FileNotFoundError:
        return None
    try:
        with paths.socket_address() as address:
            stream = await anyio.connect_unix(address)
    except (FileNotFoundError, ConnectionRefusedError):
        return None
    except PermissionError as exc:
        raise ServiceAccessError(f"cannot reach the daemon's socket {paths.socket}: {exc.strerror}; "
                                 "only the user who started it may connect") from None
    uid, pid = peer_uid(stream.extra(SocketAttribute.raw_socket))
    if uid != os.getuid():
        await stream.aclose()
        raise ServiceAccessError(f"the process behind {paths.socket} (pid {pid}) runs as uid {uid}, "
                                 f"not as you (uid {os.getuid()}); refusing to talk to it")
    return stream


def spawn_daemon(gangadir: Path, *, timeout: float, verbose: int = 0, dashboard: bool = False) -> int:
    """Start the daemon in the background and return its pid once it serves (and, with
    ``dashboard``, serves the dashboard too).

    Raises :class:`ServiceRunningError` if one already runs, :class:`ServiceError` if it fails
    to start (with its reason) or is not ready within ``timeout`` seconds.
    """
    paths = ServicePaths(gangadir)
    paths.make_directory()
    running = paths.running_pid()
    if running is not None:
        raise ServiceRunningError(f"a ganga-async service already runs for {gangadir} (pid {running})",
                                  running)
    argv = [sys.executable, "-m", "ganga_async.cli", "--gangadir", str(gangadir),
            *(["-v"] * verbose), "service", "start", "--foreground",
            *(["--dashboard"] if dashboard else [])]
    reader, writer = os.pipe()
    try:
        with private_append(paths.errlog, binary=True) as errlog:
            process = subprocess.Popen(
                [*argv, "--ready-fd", str(writer)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=errlog, pass_fds=(writer,),
                start_new_session=True,
            )
        os.close(writer)
        writer = -1
        answer = _read_answer(reader, timeout)
    finally:
        os.close(reader)
        if writer >= 0:
            os.close(writer)
    if answer.startswith("ready "):
        # Not ours to wait for: the daemon outlives this process. This keeps Popen from warning.
        process.returncode = 0
        return int(answer.split()[1])
    code = process.poll()
    if answer.startswith("error: "):
        message = answer.removeprefix("error: ")
        if "already runs" in message:
            raise ServiceRunningError(message)
        raise ServiceError(f"the daemon could not start: {message}")
    if code is None:
        raise ServiceError(f"the daemon was not ready within {timeout} s; see {paths.log} and "
                           f"{paths.errlog} (it keeps starting, as pid {process.pid})")
    raise ServiceError(f"the daemon exited with code {code} before it was ready; see {paths.errlog}")


def _read_answer(fd: int, timeout: float) -> str:
    """What the daemon writes on its ready pipe, up to the pipe's end (all writers gone)."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def start_command(gangacmd: str, gangadir: Path, prerun: str | None) -> list[str]:
    """The argv that starts a daemon with ``gangacmd``; ``prerun`` (a shell snippet, e.g.
    ``source ~/setup.sh``) runs first in the same shell, so the daemon keeps its environment."""
    argv = [*shlex.split(gangacmd), "--gangadir", str(gangadir), "service", "start"]
    if not prerun:
        return argv
    shell = shutil.which("bash") or "/bin/sh"
    return [shell, "-c", f'{prerun}\nexec "$@"', "ganga-async-prerun", *argv]
