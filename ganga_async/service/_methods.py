"""The daemon's operations as typed methods, written once over one generic ``call``.

:class:`OperationMethods` turns each entry of :data:`._operations.OPERATIONS` into a method
(``submit``, ``jobs``, ``job``, ``kill``, ...) that sends the operation through ``call(op,
**args)`` and returns its JSON-able result. The daemon's client implements ``call`` over its
socket; the command line's in-process session (:mod:`ganga_async.commands.in_process`) calls
the operations on its own engine. Both therefore take the same arguments and return the same
data, and a method added here serves both.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from .._exceptions import ServiceError
from ..model.job import Job

__all__ = ["LOST", "JobDescription", "OperationMethods", "TaskDescription"]

LOST = "the connection to the daemon was lost"
"""How the error of a request whose reply can no longer come begins."""

JobDescription = dict[str, Any]
"""A job as a dict with the fields of a job file: ``name``, ``comment``, ``inputfiles``,
``outputfiles`` and the tables ``application``, ``backend``, ``splitter`` (each with ``type``)."""

TaskDescription = dict[str, Any]
"""A task as the ``[task]`` table of a task file: ``name``, ``float`` and ``transforms``, a list
of tables with a transform's fields (``unit_splitter``, ``chain_input``, ``run_limit``, ...)
and the job fields of a job file."""


class OperationMethods(ABC):
    """The operations of the service as methods; subclasses say how :meth:`call` reaches them."""

    @abstractmethod
    async def call(self, /, op: str, **args: Any) -> Any:
        """Run operation ``op`` with the named ``args`` and return its result."""

    async def submit(self, job: JobDescription | Job, *, basedir: str | os.PathLike[str] | None = None,
                     token: str | None = None) -> dict[str, Any]:
        """Submit a job given as a dict of job-file fields (or a new :class:`~ganga_async.Job`);
        returns ``{"id", "status", ...}`` once it is accepted. Relative ``inputfiles`` are
        relative to ``basedir``, by default this process's working directory.

        ``token`` names this submission (a new random one when not given): a repeat with the same
        token returns the job the first one made. When the reply is lost (the daemon died), the
        error says the token to repeat the submission with."""
        data = job_dict(job) if isinstance(job, Job) else job
        base = _absolute(basedir if basedir is not None else ".")
        token = token if token is not None else _new_token()
        return await self._once(
            "submit", token, f"the job may have been accepted: submit again with the token {token} "
            f"(ganga-async submit --token {token})", job=data, basedir=base)

    async def task_add(self, task: TaskDescription, *, basedir: str | os.PathLike[str] | None = None,
                       token: str | None = None, run: bool = True) -> dict[str, Any]:
        """Add a task given as the ``[task]`` table of a task file (``name``, ``float``,
        ``transforms``: see docs/tasks.md) and run it (unless ``run`` is false); returns its
        row (``id``, ``status``, ``units``, ...). Relative ``inputfiles`` are relative to
        ``basedir``, by default this process's working directory.

        ``token`` names this request (a new random one when not given): a repeat with the same token
        returns the task the first one added. When the reply is lost, the error says the token
        to repeat the request with."""
        base = _absolute(basedir if basedir is not None else ".")
        token = token if token is not None else _new_token()
        return await self._once(
            "task_add", token, f"the task may have been added: add it again with the token {token} "
            f"(ganga-async tasks add FILE --token {token})", task=task, basedir=base, run=run)

    async def _once(self, op: str, token: str, repeat: str, **args: Any) -> dict[str, Any]:
        """Call ``op`` under a submission ``token``; a lost reply says how to ``repeat`` it and
        get what the first call made instead of a second one."""
        try:
            result: dict[str, Any] = await self.call(op, token=token, **args)
        except ServiceError as exc:
            if not str(exc).startswith(LOST):
                raise
            raise ServiceError(f"{exc}; {repeat} to get it without making a second one") from exc
        return result

    async def jobs(self, status: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        """One summary per master job (``id``, ``status``, ``name``, ``subjobs``, ...), filtered."""
        result: list[dict[str, Any]] = await self.call("jobs", **_given(status=status, name=name))
        return result

    async def job(self, job_id: int | str) -> dict[str, Any]:
        """Everything about a job or subjob (``3`` or ``"3.17"``), as ``show --json`` prints it."""
        result: dict[str, Any] = await self.call("job", id=job_id)
        return result

    async def kill(self, job_id: int | str) -> dict[str, Any]:
        """Kill a job (every active subjob) or one subjob."""
        result: dict[str, Any] = await self.call("kill", id=job_id)
        return result

    async def release(self, job_id: int | str) -> dict[str, Any]:
        """Release a job (or subjob) its batch system holds (HTCondor's Held)."""
        result: dict[str, Any] = await self.call("release", id=job_id)
        return result

    async def resubmit(self, job_id: int | str, statuses: Sequence[str] = ("failed",)) -> dict[str, Any]:
        """Submit again the subjobs in ``statuses``, or a finished unsplit job or subjob."""
        result: dict[str, Any] = await self.call("resubmit", id=job_id, statuses=list(statuses))
        return result

    async def remove(self, job_id: int | str) -> dict[str, Any]:
        """Kill the job if active, then delete it and its workspace."""
        result: dict[str, Any] = await self.call("remove", id=job_id)
        return result

    async def peek(self, job_id: int | str, filename: str = "stdout") -> str:
        """The text of a file of the job's output directory (``""`` lists the files)."""
        result: dict[str, Any] = await self.call("peek", id=job_id, file=filename)
        return str(result["content"])

    async def wait(self, job_id: int | str, timeout: float | None = None) -> dict[str, Any]:  # noqa: ASYNC109
        """Until the job is final (``WaitTimeoutError`` after ``timeout``); its summary."""
        result: dict[str, Any] = await self.call("wait", id=job_id, timeout=timeout)
        return result

    async def credentials(self, type: str | None = None) -> list[dict[str, Any]]:
        """The credentials the engine sees (those of ``type`` only, e.g. ``"BearerToken"``), as
        ``ganga-async credentials --json`` prints them: ``type``, ``credential``, ``identity``,
        ``location``, ``time_left``, ``expiry``, ``problem``, ``valid_for`` (backends)."""
        result: list[dict[str, Any]] = await self.call("credentials", **_given(type=type))
        return result

    async def renew_credentials(self, type: str | None = None) -> list[dict[str, Any]]:
        """Renew the credentials the engine sees (those of ``type`` only) without a terminal;
        each one renewed with its new state. :class:`~ganga_async.RenewalError` when one
        cannot be renewed (``needs_user`` when it wants a password: run ``ganga-async
        credentials renew`` in a terminal)."""
        result: list[dict[str, Any]] = await self.call("credentials_renew", **_given(type=type))
        return result

    async def shareref(self) -> list[dict[str, Any]]:
        """The shareref table: one row per ShareDir, oldest first (``name``, ``created``,
        ``count``, ``exists``), as :meth:`ShareRef.table <ganga_async.ShareRef.table>`."""
        result: list[dict[str, Any]] = await self.call("shareref")
        return result

    async def shareref_ls(self, name: str) -> str:
        """The tree of ShareDir ``name`` (``conf-<uuid>``), one entry a line."""
        result: dict[str, Any] = await self.call("shareref_ls", name=name)
        return "\n".join(result["tree"])

    async def shareref_lookup(self, name: str, unprepare: bool = False) -> list[str]:
        """The owners referencing ShareDir ``name`` (``job:3``, ``box:NAME``); with
        ``unprepare=True`` their applications are unprepared."""
        result: dict[str, Any] = await self.call("shareref_lookup", name=name, unprepare=unprepare)
        return list(result["owners"])

    async def shareref_rebuild(self, unprepare: bool = True, rmdir: bool = False) -> dict[str, int]:
        """Rebuild the counts from the jobs and the box (see :meth:`ShareRef.rebuild
        <ganga_async.ShareRef.rebuild>`); the new ``{name: count}``."""
        result: dict[str, int] = await self.call("shareref_rebuild", unprepare=unprepare, rmdir=rmdir)
        return result

    async def box(self) -> list[dict[str, Any]]:
        """The box: one row per entry (``name``, ``kind``, ``type``, ``sharedir``, ``created``)."""
        result: list[dict[str, Any]] = await self.call("box")
        return result


def job_dict(job: Job) -> JobDescription:
    """A new Job as the dict of job-file fields the ``submit`` operation builds its own from."""
    if job.id is not None:
        raise ServiceError(f"job {job.fqid} belongs to another engine; submit a new Job or a dict")
    spec = job.spec()
    data: JobDescription = {"name": job.name, "comment": job.comment,
                            "application": spec["application"], "backend": spec["backend"],
                            "inputfiles": spec["inputfiles"], "outputfiles": spec["outputfiles"]}
    if spec["splitter"] is not None:
        data["splitter"] = spec["splitter"]
    for key in ("credentials", "postprocessors", "do_auto_resubmit", "retry"):
        if spec[key]:
            data[key] = spec[key]
    return data


def _absolute(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(path)


def _given(**args: Any) -> dict[str, Any]:
    return {name: value for name, value in args.items() if value is not None}


def _new_token() -> str:
    """A new request token: 32 random hexadecimal digits, as unique as a uuid4 without
    importing ``uuid`` (which imports ``platform``: 2 ms of every command's start)."""
    return os.urandom(16).hex()
