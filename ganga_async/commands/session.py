"""What every command talks to: a :class:`Session`, and :func:`open_session` that picks one.

A session is the daemon's client (:class:`~ganga_async.service.AsyncGangaService`) when a
daemon runs for the gangadir, so that one engine only works on the repository; otherwise it is
an :class:`~ganga_async.commands.in_process.EngineSession` over an engine the command opens for
as long as it runs, with ``monitoring=False`` for the commands that only read. Both return the
JSON-able results of the daemon's operations, so each command is written once.

The commands that list or wait ask for ``autostart``: when no daemon runs they start one
(``[Service] autostart``, on by default) and say so, so that every status they print is
the one the daemon's monitoring sees now, not the one an engine last recorded.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import anyio

from .._exceptions import ServiceRunningError
from ..config import Config
from ..model.job import Job
from ..persistence.lock import EngineLock
from ..service import AsyncGangaService, JobDescription
from ..service import _protocol as protocol
from ..service._control import spawn_daemon
from . import render

__all__ = ["Session", "open_session"]


class Session(Protocol):
    """The operations a command runs, with the daemon's arguments and JSON-able results
    (see :class:`~ganga_async.service._methods.OperationMethods` for each one's data)."""

    @property
    def gangadir(self) -> Path:
        """The gangadir the session works on."""

    @property
    def daemon_pid(self) -> int | None:
        """The pid of the daemon that answers, which follows the jobs after the command has
        ended; None when the command's own engine answers."""

    async def call(self, /, op: str, **args: Any) -> Any:
        """Any operation by name: its whole result (e.g. ``peek``'s ``{id, file, content}``)."""

    async def submit(self, job: JobDescription | Job, *,
                     basedir: str | os.PathLike[str] | None = None,
                     token: str | None = None) -> dict[str, Any]:
        """Submit a job; ``{"id", "status", ...}`` once it is accepted (a repeat with the same
        ``token`` gives the job the first one made)."""

    async def task_add(self, task: dict[str, Any], *, basedir: str | os.PathLike[str] | None = None,
                       token: str | None = None, run: bool = True) -> dict[str, Any]:
        """Add a task (the ``[task]`` table of a task file) and run it; its row (a repeat
        with the same ``token`` gives the task the first one added)."""

    async def jobs(self, status: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        """One summary per master job."""

    async def job(self, job_id: int | str) -> dict[str, Any]:
        """Everything about a job or subjob, as ``show --json`` prints it."""

    async def kill(self, job_id: int | str) -> dict[str, Any]:
        """Kill a job or subjob; its id and the status it has now."""

    async def release(self, job_id: int | str) -> dict[str, Any]:
        """Release a job or subjob its batch system holds; its id and the status it has now."""

    async def resubmit(self, job_id: int | str, statuses: Sequence[str] = ("failed",)) -> dict[str, Any]:
        """Submit a job's subjobs in ``statuses`` again, or a final unsplit job; its summary."""

    async def remove(self, job_id: int | str) -> dict[str, Any]:
        """Kill the job if active, then delete it with its workspace."""

    async def peek(self, job_id: int | str, filename: str = "stdout") -> str:
        """The text of a file of the job's output."""

    async def wait(self, job_id: int | str, timeout: float | None = None) -> dict[str, Any]:  # noqa: ASYNC109
        """The job's summary once it is final; ``WaitTimeoutError`` after ``timeout``."""

    def events(self, job: int | str | None = None, *, subjobs: bool = True,
               types: Sequence[str] = protocol.EVENT_TYPES
               ) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        """Status transitions and credential warnings from now on, as dicts."""

    async def credentials(self, type: str | None = None) -> list[dict[str, Any]]:
        """The credentials the engine sees, as ``credentials --json`` prints them."""

    async def renew_credentials(self, type: str | None = None) -> list[dict[str, Any]]:
        """Renew the credentials the engine sees, without a terminal."""

    async def shareref(self) -> list[dict[str, Any]]:
        """The shareref table, one row per ShareDir."""

    async def shareref_ls(self, name: str) -> str:
        """The tree of a ShareDir."""

    async def shareref_lookup(self, name: str, unprepare: bool = False) -> list[str]:
        """The owners referencing a ShareDir, unprepared when asked."""

    async def shareref_rebuild(self, unprepare: bool = True, rmdir: bool = False) -> dict[str, int]:
        """The counts rebuilt from the jobs and the box."""

    async def box(self) -> list[dict[str, Any]]:
        """The box, one row per entry."""


@asynccontextmanager
async def open_session(gangadir: Path | None, config: Config, *, monitoring: bool,
                       autostart: bool = False, log_json: bool = False
                       ) -> AsyncIterator[Session]:
    """The gangadir's daemon when one runs, otherwise an engine of the command's own, opened
    with ``monitoring`` and closed at the end of the block. With ``autostart`` and
    ``[Service] autostart`` a daemon is started first when none runs, and that is said on
    stderr (as a JSON log line with ``log_json``); not while another engine (a script's) works
    on the gangadir: then a command that only reads goes on beside it, and one that would
    monitor says which process holds the gangadir."""
    where = (gangadir or config.gangadir).expanduser().absolute()
    service = await AsyncGangaService.running(where)
    if (service is None and autostart and config["Service"]["autostart"]
            and EngineLock.of(where, config.user).holder() is None):
        await _start_daemon(where, config, log_json)
        service = await AsyncGangaService.running(where)
    if service is not None:
        async with service:
            yield service
        return
    # Imported here: a command the daemon serves never loads the engine (a third of its start).
    from ..engine import Engine
    from .in_process import EngineSession

    async with Engine(gangadir, config=config, monitoring=monitoring) as engine:
        yield EngineSession(engine)


async def _start_daemon(gangadir: Path, config: Config, log_json: bool) -> None:
    """Start the daemon of ``gangadir`` and say so; one started meanwhile by another command
    is as good."""
    try:
        pid = await anyio.to_thread.run_sync(functools.partial(
            spawn_daemon, gangadir, timeout=config["Service"]["start_timeout"]))
    except ServiceRunningError:
        return
    render.print_note(
        f"started the ganga-async service for {gangadir} (pid {pid}): it follows the jobs "
        "between commands; stop it with: ganga-async service stop (or set [Service] "
        "autostart = false)", as_json=log_json)
