"""The accept stage: prepare and validate a job, then persist the intent to submit it.

``Engine.submit`` returns once this stage (and the split stage) accepted the job, and raises the
stage's error otherwise: the job then stays ``new``, as if never submitted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .. import _plugins
from .._exceptions import JobSpecError
from .._log import bound
from ..applications.base import Application
from ..model import machine
from ..model.job import Job, freeze_description, thaw_description
from ..persistence import encoding
from ..prepared import _preparing
from ..prepared.sharedir import SharedArea
from ..states import Status
from .context import Context, Live, engine_log
from .inputs import check_inputs
from .postprocess import holds_master
from .retry import retry_policy

__all__ = ["AcceptStage", "answer", "refuse", "sharedir_path"]

log = engine_log


class AcceptStage:
    """Takes ``(job, reply)`` from ``Engine.submit``: prepares the application if it is not
    (its files copied into a ShareDir), validates the description (inputs exist, the executable
    resolves, the splitter fits the application), moves the job to ``submitting`` and passes
    it to the split stage, which answers ``reply``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run(self, inbox: MemoryObjectReceiveStream[tuple[Live, MemoryObjectSendStream[Any]]],
                  *, task_status: TaskStatus[None]) -> None:
        ctx = self.ctx
        task_status.started()
        async with inbox, ctx.split_inbox() as outbox:
            async for live, reply in inbox:
                with bound(job_id=live.id):
                    if await self._accept(live, reply):
                        await outbox.send((live, reply))
                del live, reply  # not kept while waiting: see SplitStage.run

    async def _accept(self, live: Live, reply: MemoryObjectSendStream[Any]) -> bool:
        ctx, job = self.ctx, live.job
        prepared_here = job.application.is_prepared is None
        try:
            if prepared_here:
                made = await _preparing.prepare(job.application, ctx.shared, ctx.shareref)
                sharedir: Path | None = ctx.shared.root / made.name / made.subdir
            else:
                sharedir = await sharedir_path(ctx.shared, job.application)
            validate(job, sharedir, ctx.gangadir)
            await anyio.to_thread.run_sync(check_inputs, job.inputfiles, ctx.gangadir,
                                           ctx.config["Pipeline"]["max_input_size"])
            spec = await stored_spec(live)
            changes = machine.Changes()
            live.record.hold_final = holds_master(job.postprocessors)
            live.record.retry = retry_policy(job, ctx.config)
            if job.postprocessors and ctx.notify is not None:
                ctx.notify(job)
            machine.accept(changes, live.record, time.time())
            ctx.commit(changes)
            ctx.repository.queue_job(live.id, name=job.name, comment=job.comment,
                                     application=job.application.plugin_name,
                                     backend=job.backend.plugin_name, spec=spec)
            if live.token is not None:  # in the transaction that accepts the job
                ctx.repository.queue_token(live.token, live.id, time.time())
            await ctx.repository.flush(live.id)
        except BaseException as exc:
            if live.record.status is Status.NEW:
                thaw_description(job)
            if (prepared_here and isinstance(exc, Exception)
                    and _preparing.unprepare(job.application)):
                await ctx.shareref.flush()
            await refuse(ctx, live, reply, exc)
            if not isinstance(exc, Exception):
                raise
            return False
        log.info("job accepted", name=job.name)
        return True


async def refuse(ctx: Context, live: Live, reply: MemoryObjectSendStream[Any] | None,
                 exc: BaseException) -> None:
    """Put a job whose submission failed before reaching a backend back to ``new``, and
    answer its ``submit()`` with the error."""
    changes = machine.Changes()
    if machine.refuse(changes, live.record, str(exc)):
        thaw_description(live.job)
        ctx.commit(changes)
    if reply is not None:
        await answer(reply, exc)


async def answer(reply: MemoryObjectSendStream[Any], outcome: BaseException | None) -> None:
    """Answer a ``submit()``; one that was cancelled meanwhile no longer listens, and its job
    goes on all the same."""
    with reply:
        try:
            await reply.send(outcome)
        except anyio.BrokenResourceError:
            pass


def validate(job: Job, sharedir: Path | None, gangadir: Path) -> None:
    """Check that the job can run: its inputs exist (made absolute) and none is a directory
    holding the gangadir, the application, the backend, the splitter and the postprocessors
    accept it, and the backend's plugin loads."""
    inputs = []
    home = os.path.realpath(gangadir)
    for i, path in enumerate(job.inputfiles):
        full = os.path.abspath(os.path.expanduser(path))
        if not os.path.exists(full):
            raise JobSpecError(f"inputfiles[{i}]", f"{full} does not exist; fix the path")
        real = os.path.realpath(full)
        if os.path.isdir(real) and os.path.commonpath([real, home]) == real:
            raise JobSpecError(
                f"inputfiles[{i}]", f"{full} holds the gangadir {gangadir}: its copy into the "
                "job's working directory would copy the gangadir into itself; give the files or "
                "a directory that does not contain it")
        inputs.append(full)
    job.inputfiles = inputs
    job.application.validate(inputs, sharedir)
    job.backend.validate(job)
    if job.splitter is not None:
        job.splitter.validate(job)
    for processor in job.postprocessors:
        processor.validate()
    _plugins.load("backend", job.backend.plugin_name)


async def stored_spec(live: Live) -> str:
    """The job's description frozen (it is read once, for good) and encoded for the
    repository, a slice at a time when it is large (:mod:`~ganga_async.persistence.encoding`);
    JobSpecError when a value cannot be stored. A description write begun earlier and still
    encoding is dropped (:attr:`Live.spec_writes`)."""
    job = live.job
    freeze_description(job)
    live.spec_writes += 1
    try:
        return await encoding.encode(job.spec())
    except (TypeError, ValueError) as exc:
        raise JobSpecError(
            "job", f"its description cannot be stored ({exc}): a value set inside a component "
            "is not a string, number, boolean, list or dict of them; fix it and submit again"
        ) from None


async def sharedir_path(shared: SharedArea, app: Application) -> Path | None:
    """The path of a prepared application's ShareDir, checked to exist in ``shared``; None
    for an unprepared application."""
    sharedir = app.is_prepared
    return None if sharedir is None else await shared.existing(sharedir)
