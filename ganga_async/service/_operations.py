"""The structured operations the daemon serves, one entry per name in :data:`OPERATIONS`.

Each operation is an async function of the daemon's engine and the request's arguments,
returning something JSON can carry. Features that add operations (prepared state, credentials)
register them here under their name; the daemon, the protocol and the clients need nothing else.
The daemon itself answers the operations that concern the connection or the daemon: ``ping``,
``send_cmd``, ``events``, ``cancel`` and ``shutdown``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .. import _plugins
from .._describe import credential_row, credential_rows, describe, summarise
from .._exceptions import GangaAsyncError, JobSpecError, ProtocolError, RenewalError
from .._jobfile import job_from_dict
from .._taskfile import task_from_dict
from ..credentials.base import RENEW_CLI
from ..engine import Engine
from ..events import EventStream
from ..model.job import Job
from ..model.task import CoreTask, TaskStatus, UnitStatus
from ..states import Status
from . import _protocol as protocol

__all__ = ["OPERATIONS", "Arguments", "Operation", "event_streams"]

_REQUIRED: Any = object()


class Arguments:
    """A request's named arguments; a missing or mistyped one is a ``bad_args`` ProtocolError
    naming the operation and the argument."""

    def __init__(self, op: str, args: dict[str, Any]) -> None:
        self.op = op
        self._args = args

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = _REQUIRED) -> Any:
        value = self._args.get(name, default)
        if value is _REQUIRED:
            raise ProtocolError("bad_args", f"{self.op}: argument {name!r} is required")
        if value is None and default is None:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ProtocolError("bad_args", f"{self.op}: argument {name!r} must be {names}, "
                                f"not {type(value).__name__}")
        return value

    def check_known(self, *names: str) -> None:
        unknown = sorted(set(self._args) - set(names))
        if unknown:
            raise ProtocolError("bad_args", f"{self.op}: unknown argument {unknown[0]!r}; "
                                f"it takes {', '.join(names) or 'none'}")


Operation = Callable[[Engine, Arguments], Awaitable[Any]]


async def _job_argument(engine: Engine, args: Arguments) -> Job:
    return await engine.get(args.get("id", (int, str)))


async def submit(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"job": {<job file fields>}, "basedir": <dir for relative inputfiles>, "token": <the
    submission's name>}`` -> the job's id, status and subjob count, once the engine accepted
    it (or the job an earlier submission with the same token made)."""
    args.check_known("job", "basedir", "token")
    data = args.get("job", dict)
    basedir = args.get("basedir", str, None)
    token = args.get("token", str, None)
    _check_relative(data, basedir)
    job = job_from_dict(data, "submit", basedir=basedir)
    try:
        submitted = await engine.submit(job, token=token)
    except GangaAsyncError:
        # A job file is submitted or refused whole: one found invalid leaves no job behind.
        if job.id is not None and job.status == Status.NEW:
            await engine.remove(job)
        raise
    return summarise(submitted)


def _check_relative(data: dict[str, Any], basedir: str | None) -> None:
    """The daemon's working directory means nothing to its client: a relative input file
    needs the directory it is relative to."""
    if basedir is not None and os.path.isabs(basedir):
        return
    inputfiles = data.get("inputfiles") or []
    if not isinstance(inputfiles, list):
        return  # not a list: refused by name when the job is built
    for i, path in enumerate(inputfiles):
        if isinstance(path, str) and not os.path.isabs(os.path.expanduser(path)):
            raise JobSpecError(f"inputfiles[{i}]", f"{path!r} is relative: give an absolute path, "
                               "or the absolute directory it is relative to as 'basedir'")


async def jobs(engine: Engine, args: Arguments) -> list[dict[str, Any]]:
    """``{"status": ..., "name": ...}`` (both optional) -> one summary per master job."""
    args.check_known("status", "name")
    return await engine.summary(status=args.get("status", str, None), name=args.get("name", str, None))


async def job(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"id": 3 | "3.17"}`` -> everything about the job or subjob (as ``show --json``)."""
    args.check_known("id")
    return describe(await _job_argument(engine, args))


async def kill(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"id": ...}`` -> the kill is requested; the status the job has now."""
    args.check_known("id")
    target = await _job_argument(engine, args)
    await engine.kill(target)
    return {"id": target.fqid, "status": str(target.status)}


async def release(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"id": ...}`` -> the release is requested; the status the job has now."""
    args.check_known("id")
    target = await _job_argument(engine, args)
    await engine.release(target)
    return {"id": target.fqid, "status": str(target.status)}


async def resubmit(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"id": ..., "statuses": ["failed"]}`` -> the job's summary once resubmitted."""
    args.check_known("id", "statuses")
    target = await _job_argument(engine, args)
    statuses = args.get("statuses", list, ["failed"])
    await engine.resubmit(target, statuses=[str(s) for s in statuses])
    return summarise(target)


async def remove(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"id": ...}`` -> the job is killed if active, then deleted with its workspace."""
    args.check_known("id")
    target = await _job_argument(engine, args)
    await engine.remove(target)
    return {"id": target.fqid, "status": str(target.status)}


async def peek(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"id": ..., "file": "stdout"}`` -> the text of that file of the job's output."""
    args.check_known("id", "file")
    target = await _job_argument(engine, args)
    filename = args.get("file", str, "stdout")
    return {"id": target.fqid, "file": filename, "content": await engine.peek(target, filename)}


async def force_status(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"id": ..., "status": "failed" | "completed"}`` -> Ganga's ``force_status``."""
    args.check_known("id", "status")
    target = await _job_argument(engine, args)
    await engine.force_status(target, args.get("status", str))
    return {"id": target.fqid, "status": str(target.status)}


async def wait(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"id": ..., "timeout": seconds}`` -> the job's summary once it is final; cancellable."""
    args.check_known("id", "timeout")
    target = await _job_argument(engine, args)
    timeout = args.get("timeout", (int, float), None)
    await engine.wait(target, timeout)
    return summarise(target)


def _credential_type(args: Arguments) -> str | None:
    type_name: str | None = args.get("type", str, None)
    valid = _plugins.available("credential")
    if type_name is not None and type_name not in valid:
        raise ProtocolError("bad_args", f"{args.op}: argument 'type' is {type_name!r}, not a "
                            f"credential type; give one of {', '.join(valid)}")
    return type_name


async def credentials(engine: Engine, args: Arguments) -> list[dict[str, Any]]:
    """``{"type": "BearerToken"}`` (optional) -> the credentials the daemon sees, as
    ``ganga-async credentials --json`` prints them: type, identity, location, time left and the
    backends each is valid for. What they contain is never read out."""
    args.check_known("type")
    return await credential_rows(engine.credentials.store, _credential_type(args))


async def credentials_renew(engine: Engine, args: Arguments) -> list[dict[str, Any]]:
    """``{"type": ...}`` (optional) -> each credential renewed, with its new state.

    The renewals go through the engine's credential manager, so they are shared with the
    watcher's, announced on the event streams and resume held jobs. The daemon has no terminal:
    when any renewal fails (one that wants a password among them) the reply is a
    :class:`RenewalError` naming each failure, what was renewed, and where a person can renew.
    """
    args.check_known("type")
    manager = engine.credentials
    renewed: list[dict[str, Any]] = []
    failures: list[RenewalError] = []
    for _, outcome in await manager.renew_all(_credential_type(args)):
        if isinstance(outcome, RenewalError):
            failures.append(outcome)
        else:
            renewed.append({"renewed": True, **credential_row(outcome, manager.store)})
    if not failures:
        return renewed
    message = "; ".join(str(exc) for exc in failures)
    needs_user = any(exc.needs_user for exc in failures)
    if needs_user and "in a terminal" not in message:
        message += f"; the daemon cannot ask for a password: run {RENEW_CLI} in a terminal"
    if renewed:
        message += "; renewed meanwhile: " + ", ".join(row["credential"] for row in renewed)
    raise RenewalError(message, needs_user=needs_user)


async def shareref(engine: Engine, args: Arguments) -> list[dict[str, Any]]:
    """``{}`` -> the shareref table: one row per ShareDir (name, created, count, exists)."""
    args.check_known()
    return [dataclasses.asdict(row) for row in await engine.shareref.table()]


async def shareref_ls(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"name": "conf-..."}`` -> the ShareDir's tree, one line per entry."""
    args.check_known("name")
    name = args.get("name", str)
    return {"name": name, "tree": (await engine.shareref.ls(name)).splitlines()}


async def shareref_lookup(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"name": ..., "unprepare": false}`` -> the owners referencing the ShareDir
    (``job:3``, ``box:NAME``), unprepared when asked."""
    args.check_known("name", "unprepare")
    name = args.get("name", str)
    unprepare = args.get("unprepare", bool, False)
    return {"name": name, "owners": await engine.shareref.lookup(name, unprepare=unprepare),
            "unprepared": unprepare}


async def shareref_rebuild(engine: Engine, args: Arguments) -> dict[str, int]:
    """``{"unprepare": true, "rmdir": false}`` -> the counts rebuilt from the jobs and the box."""
    args.check_known("unprepare", "rmdir")
    return await engine.shareref.rebuild(unprepare=args.get("unprepare", bool, True),
                                         rmdir=args.get("rmdir", bool, False))


async def box(engine: Engine, args: Arguments) -> list[dict[str, Any]]:
    """``{}`` -> the box: one row per entry (name, kind, type, sharedir, created)."""
    args.check_known()
    return [dataclasses.asdict(entry) for entry in await engine.box.entries()]


def _task_row(task: CoreTask) -> dict[str, Any]:
    units = dict.fromkeys((str(s) for s in UnitStatus), 0)
    for counts in task.unit_counts().values():
        for status, count in counts.items():
            units[status] += count
    return {"id": task.id, "name": task.name, "status": str(task.status), "float": task.float,
            "units": units, "transforms": task.unit_counts(), "reason": task.reason}


async def tasks(engine: Engine, args: Arguments) -> list[dict[str, Any]]:
    """``{}`` -> one row per task: id, name, status, float, units by status (in all and per
    transform)."""
    args.check_known()
    return [_task_row(task) for task in engine.tasks.all()]


async def task(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"id": 0}`` -> the task's row and every unit: transform, unit, status, job id, the
    ids of its earlier jobs and its reason."""
    args.check_known("id")
    found = engine.tasks.get(args.get("id", int))
    return {**_task_row(found), "unit_list": [
        {"transform": i, "unit": u.index, "status": str(u.status), "job_id": u.job_id,
         "history": u.history, "reason": u.reason} for i, _, u in found.units()]}


async def task_add(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"task": {<the [task] table of a task file>}, "basedir": <dir for relative
    inputfiles>, "token": <the request's name>, "run": true}`` -> the task's row once it is
    stored (and running, unless ``run`` is false); a repeat with the same token gives the task
    the first one added, running it only if it never ran."""
    args.check_known("task", "basedir", "token", "run")
    data = args.get("task", dict)
    basedir = args.get("basedir", str, None)
    token = args.get("token", str, None)
    run = args.get("run", bool, True)
    transforms = data.get("transforms")
    for i, transform in enumerate(transforms if isinstance(transforms, list) else []):
        if isinstance(transform, dict):
            try:
                _check_relative(transform, basedir)
            except JobSpecError as exc:
                raise JobSpecError(f"task.transforms[{i}].{exc.field}",
                                   str(exc).removeprefix(f"{exc.field}: ")) from None
    task = task_from_dict({"task": data}, "task_add", basedir=basedir)
    if run and task.float == 0:
        raise JobSpecError("task.float", "is 0, so the task may run no job; set float = 10 in "
                           "[task] to run 10 units at a time (or add it with run false)")
    added = await engine.tasks.add(task, token=token)
    if run and added.status is TaskStatus.NEW:
        await engine.tasks.run(added)
    return _task_row(added)


async def task_action(engine: Engine, args: Arguments) -> dict[str, Any]:
    """``{"id": 0, "action": "pause" | "run" | "remove"}`` -> the task's row after it."""
    args.check_known("id", "action")
    found = engine.tasks.get(args.get("id", int))
    action = args.get("action", str)
    if action not in ("pause", "run", "remove"):
        raise ProtocolError("bad_args", f"task_action: action {action!r} must be pause, run or remove")
    await getattr(engine.tasks, action)(found)
    return _task_row(found)


OPERATIONS: dict[str, Operation] = {
    "submit": submit,
    "jobs": jobs,
    "job": job,
    "kill": kill,
    "release": release,
    "resubmit": resubmit,
    "remove": remove,
    "peek": peek,
    "force_status": force_status,
    "wait": wait,
    "shareref": shareref,
    "shareref_ls": shareref_ls,
    "shareref_lookup": shareref_lookup,
    "shareref_rebuild": shareref_rebuild,
    "box": box,
    "tasks": tasks,
    "task": task,
    "task_action": task_action,
    "task_add": task_add,
    "credentials": credentials,
    "credentials_renew": credentials_renew,
}
"""Operation name -> implementation. Those in :data:`._protocol.CANCELLABLE` (``wait``) may be
cancelled by their client; the others run to their end once accepted, even when their client
goes away."""


EventMessage = Callable[[Any], dict[str, Any] | None]


def event_streams(engine: Engine, types: Sequence[str], job_id: int | None, subjobs: bool
                  ) -> list[tuple[EventStream[Any], EventMessage]]:
    """The engine's subscriptions an ``events`` stream of these ``types`` reads, each with what
    turns its events into the stream's dicts (None: filtered out for ``job_id`` / ``subjobs``)."""
    streams: list[tuple[EventStream[Any], EventMessage]] = []
    if "status" in types:
        streams.append((engine.events(),
                        lambda event: protocol.status_event(event, job_id, subjobs)))
    if "credential" in types:
        streams.append((engine.credential_events(), protocol.credential_event))
    if "postprocessed" in types:
        streams.append((engine.postprocess_events(),
                        lambda event: protocol.postprocessed_event(event, job_id, subjobs)))
    if "retrying" in types:
        streams.append((engine.retry_events(),
                        lambda event: protocol.retrying_event(event, job_id, subjobs)))
    return streams
