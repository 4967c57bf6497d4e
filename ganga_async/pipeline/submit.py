"""The submit stage: the credential gate, then (sub)jobs resolved into units and handed to
their backend's driver in batches (a split master becomes one job array where the backend has
them)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream

from .._exceptions import GangaAsyncError
from .._log import bound
from .._workspace import output_dir, work_dir
from ..backends.base import BackendStatus, Handle, SubmitUnit
from ..credentials.manager import Requirement
from ..model import machine
from ..model.job import apply_overrides
from ..states import Status
from .context import Chunk, Context, Live, engine_log, indices_of
from .monitor import Backends

__all__ = ["SubmitStage", "Held"]

log = engine_log


class SubmitStage:
    """Passes each chunk through the credential gate (a chunk whose credentials are short is
    held, and the :class:`~ganga_async.credentials.CredentialManager` resumes it by itself),
    then submits what is ``submitting`` in it. A chunk that fails as a whole fails its
    (sub)jobs with the reason; the stage goes on."""

    def __init__(self, ctx: Context, backends: Backends) -> None:
        self.ctx = ctx
        self.backends = backends

    async def run(self, inbox: MemoryObjectReceiveStream[Chunk], *, task_status: TaskStatus[None]) -> None:
        task_status.started()
        async with inbox:
            async for live, indices in inbox:
                if live.record.status is not Status.REMOVED:
                    with bound(job_id=live.id):
                        await self._take(live, indices)
                del live, indices  # not kept while waiting: see SplitStage.run

    async def _take(self, live: Live, indices: list[int] | None) -> None:
        """Submit one chunk, unless the credential gate holds it; fail it if submission fails."""
        try:
            if await self._gate(live, indices):
                return
            await self._submit(live, indices)
        except Exception as exc:
            log.error("submission failed", error=str(exc))
            changes = machine.Changes()
            now = time.time()
            for index in indices if indices is not None else [None]:
                if live.record.status_of(index) is Status.SUBMITTING:
                    machine.set_status(changes, live.record, index, Status.FAILED, now,
                                       reason=f"submission failed: {exc}")
            self.ctx.commit(changes)

    async def _gate(self, live: Live, indices: list[int] | None) -> bool:
        """Hold the chunk when a credential it needs is short (True); the credential manager
        resumes it once they are all valid again."""
        ctx = self.ctx
        needs = ctx.credentials.requirements(live.job)
        if not needs:
            return False
        reason = await ctx.credentials.check(needs)
        if reason is None:
            return False
        record = live.record
        targets = [i for i in (indices if indices is not None else [None])
                   if record.status_of(i) is Status.SUBMITTING]
        changes = machine.Changes()
        now = time.time()
        for index in targets:
            machine.set_status(changes, record, index, Status.HELD, now, reason=reason, backend_id="")
        ctx.commit(changes)
        ctx.credentials.hold(Held(ctx, live, targets, needs))
        log.warning("held for credentials", count=len(targets), reason=reason)
        return True

    async def _submit(self, live: Live, indices: list[int] | None) -> None:
        ctx, record = self.ctx, live.record
        targets: list[int | None] = list(indices) if indices is not None else [None]
        units: list[SubmitUnit] = []
        sharedirs: dict[tuple[str, str], Path] = {}
        jobdir = record.jobdir
        changes = machine.Changes()
        for index in machine.ready(record, targets):
            try:
                units.append(self._unit(live, index, jobdir, sharedirs))
            except GangaAsyncError as exc:
                machine.set_status(changes, record, index, Status.FAILED, time.time(), reason=str(exc))
        ctx.commit(changes)
        if not units:
            return
        backends = self.backends
        name = live.job.backend.plugin_name
        driver = await backends.driver(name)
        handing_over = backends.handing_over
        for unit in units:
            handing_over[unit.key] = None
        try:
            results = await driver.bulk_submit(units)
        except BaseException:
            for unit in units:
                handing_over.pop(unit.key, None)
            raise
        backends.soon(name)
        now = time.time()
        late_kills: list[Handle] = []
        early: dict[str, BackendStatus] = {}
        active = backends.active[name]
        changes = machine.Changes()
        # The master's status is derived once for the chunk, not once per subjob.
        for unit, result in zip(units, results, strict=True):
            news = handing_over.pop(unit.key, None)
            if isinstance(result, BaseException):
                machine.set_status(changes, record, unit.index, Status.FAILED, now,
                                   reason=f"submission refused: {result}", derive=False)
                continue
            if record.status_of(unit.index) is Status.KILLED:
                late_kills.append(Handle(unit.key, result, unit.outputdir))
                continue
            active.add(unit.key, live, unit.index, result)
            machine.set_status(changes, record, unit.index, Status.SUBMITTED, now, backend_id=result,
                               t=now, derive=False)
            if news is not None:
                early[unit.key] = news
        machine.derive(changes, record, now)
        ctx.commit(changes)
        if early:
            await backends.apply_news(active, early)
        if late_kills:
            await driver.kill(late_kills)

    def _unit(self, live: Live, index: int | None, jobdir: Path,
              sharedirs: dict[tuple[str, str], Path]) -> SubmitUnit:
        """The (sub)job resolved for its backend; ``jobdir`` is the job's directory and
        ``sharedirs`` caches ShareDir paths over a chunk, whose subjobs nearly always share
        their master's."""
        job = live.job
        if index is None:
            fields: dict[str, Any] = {
                "name": job.name, "application": job.application, "backend": job.backend,
                "inputfiles": job.inputfiles, "outputfiles": job.outputfiles,
            }
        else:
            assert live.record.table is not None
            raw = live.record.table.overrides[index]
            fields = apply_overrides(job, json.loads(raw) if raw else {})
        app = fields["application"]
        sharedir = app.is_prepared
        path = None
        if sharedir is not None:
            where = (sharedir.name, sharedir.subdir)
            path = sharedirs.get(where)
            if path is None:
                path = sharedirs[where] = self.ctx.shared.root / sharedir.name / sharedir.subdir
        command = app.command(fields["inputfiles"], path)
        outputdir = output_dir(jobdir, index)
        return SubmitUnit(
            key=live.record.key(index), job_id=live.id, index=index, name=fields["name"],
            backend=fields["backend"], command=command, inputfiles=list(fields["inputfiles"]),
            outputfiles=list(fields["outputfiles"]), outputdir=outputdir,
            # a subjob's work_dir is inside its outputdir: one path join less per subjob
            workdir=work_dir(jobdir, None) if index is None else outputdir / "work",
        )


class Held:
    """(Sub)jobs of one master held at the credential gate; the manager resumes them."""

    def __init__(self, ctx: Context, live: Live, targets: list[int | None],
                 needs: Sequence[Requirement]) -> None:
        self.ctx = ctx
        self.live = live
        self.targets = targets
        self.needs = needs

    def _still_held(self) -> list[int | None]:
        record = self.live.record
        return [i for i in self.targets
                if record.status_of(i) is Status.HELD and not machine.held_by_backend(record, i)]

    async def resume(self) -> None:
        """Back to ``submitting`` and into the submit stage (those not killed meanwhile)."""
        live = self.live
        if live.record.status is Status.REMOVED:
            return
        changes = machine.Changes()
        now = time.time()
        chosen = [i for i in self._still_held() if machine.resume_held(changes, live.record, i, now)]
        if not chosen:
            return
        self.ctx.commit(changes)
        log.info("credentials valid again: resuming", job_id=live.id, count=len(chosen))
        try:
            await self.ctx.submit_inbox().send((live, indices_of(chosen)))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the engine is closing; the next one submits them (they are `submitting`)

    def explain(self, reason: str) -> None:
        """Record a new reason on the (sub)jobs still held."""
        record = self.live.record
        changes = machine.Changes()
        now = time.time()
        for index in self._still_held():
            current = record.reason if index is None else (
                record.table.reason.get(index) if record.table is not None else None)
            if current != reason:
                machine.set_status(changes, record, index, Status.HELD, now, reason=reason)
        self.ctx.commit(changes)
