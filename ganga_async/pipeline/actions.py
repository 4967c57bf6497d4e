"""What the user does to jobs already submitted: kill, release, resubmit, remove, force a status.

The engine's public methods check that it runs and holds the gangadir's lock, find the job's
live record, and hand the work here; every status change goes through the state machine
(:mod:`ganga_async.model.machine`) and is committed through the context's recorder.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence

import anyio

from .._exceptions import JobStateError
from .._workspace import output_dir
from ..backends.base import Handle
from ..model import machine
from ..model.job import Job
from ..model.record import JobRecord
from ..states import FINAL, Status
from .context import Context, engine_log, indices_of, say
from .monitor import Backends
from .store import JobStore

__all__ = ["Actions"]


class Actions:
    """The job actions of one engine, on its context, its backends and its job store."""

    def __init__(self, ctx: Context, backends: Backends) -> None:
        self._ctx = ctx
        self._backends = backends

    async def kill(self, job: Job) -> None:
        live, index = self._ctx.registry.find(job)
        record = live.record
        if record.status_of(index) is Status.NEW:
            raise JobStateError(
                f"job {job.fqid} is new: it was never submitted, so there is nothing to kill "
                "(submit() it, or remove() it)")
        changes = machine.Changes()
        now = time.time()
        on_backend: list[int | None] = []
        count = 0
        for target in machine.targets(record, index):
            status = record.status_of(target)
            if machine.on_backend(record, target) and status is not Status.SUBMITTING:
                on_backend.append(target)
            elif status in (Status.SUBMITTING, Status.NEW, Status.HELD):
                machine.set_status(changes, record, target, Status.KILLED, now,
                                   reason="killed before submission")
                count += 1
        self._ctx.commit(changes)
        backends = self._backends
        by_backend = backends.handles(live, on_backend)
        count += sum(len(handles) for handles in by_backend.values())
        if not count:
            raise JobStateError(f"job {job.fqid} is {job.status}: there is nothing to kill")
        for name, handles in by_backend.items():
            await backends.drivers[name].kill(handles)
            backends.soon(name)
        say.info(f"killing job {job.fqid}", job_id=live.id, count=count)

    async def release(self, job: Job) -> None:
        live, index = self._ctx.registry.find(job)
        chosen = [t for t in machine.targets(live.record, index) if machine.held_by_backend(live.record, t)]
        backends = self._backends
        by_backend = backends.handles(live, chosen)
        if not by_backend:
            raise JobStateError(f"job {job.fqid} is {job.status}: nothing of it is held by its backend")
        for name, handles in by_backend.items():
            await backends.drivers[name].release(handles)
            backends.soon(name)
        engine_log.info("release requested", job_id=live.id, count=len(chosen))

    async def resubmit(self, job: Job, statuses: Sequence[str | Status]) -> None:
        live, index = self._ctx.registry.find(job)
        record = live.record
        wanted = {Status.parse(s) for s in statuses}
        if index is not None or not record.split:
            wanted = set(FINAL - {Status.REMOVED})
        chosen = [i for i in machine.targets(record, index) if record.status_of(i) in wanted]
        if not chosen:
            names = ", ".join(sorted(str(s) for s in wanted))
            raise JobStateError(f"job {job.fqid} has nothing in {names} to resubmit")
        say.info(f"resubmitting job {job.fqid}", job_id=live.id, count=len(chosen))
        driver = await self._backends.driver(live.job.backend.plugin_name)
        jobdir = record.jobdir
        await driver.forget([Handle(record.key(i), "", output_dir(jobdir, i)) for i in chosen])
        changes = machine.Changes()
        now = time.time()
        for target in chosen:
            machine.reset_for_submission(changes, record, target, now)
        self._ctx.commit(changes)
        await self._ctx.repository.flush()
        await self._ctx.submit_inbox().send((live, indices_of(chosen)))

    async def remove(self, job: Job, store: JobStore) -> None:
        if job.master is not None:
            raise JobStateError(f"subjob {job.fqid} cannot be removed on its own; remove job {job.master.id}")
        if job.id is None:
            job.bind(JobRecord(status=Status.REMOVED), store)
            return
        live, _ = self._ctx.registry.find(job)
        try:
            await self.kill(job)
        except JobStateError:
            pass
        self._backends.drop(live)
        await self._ctx.repository.delete_job(live.id)
        await anyio.to_thread.run_sync(shutil.rmtree, live.record.jobdir, True)
        changes = machine.Changes()
        machine.remove(changes, live.record)
        await store.forget(live)
        self._ctx.commit(changes)
        self._wake_all_of(job.fqid)
        say.info(f"removing job {live.id}", job_id=live.id)

    def _wake_all_of(self, fqid: str) -> None:
        """Wake whoever waits for the job or one of its subjobs."""
        registry = self._ctx.registry
        prefix = f"{fqid}."
        for key in [k for k in registry.waiters if k == fqid or k.startswith(prefix)]:
            registry.wake(key)

    async def force_status(self, job: Job, target: Status, *, kill: bool) -> None:
        if target not in (Status.FAILED, Status.COMPLETED):
            raise JobStateError(f"force_status accepts 'failed' or 'completed', not {target}")
        live, index = self._ctx.registry.find(job)
        say.info(f'Forcing job {job.fqid} to status "{target}"')
        try:
            if kill:
                await self.kill(job)
        except JobStateError:
            pass
        chosen = machine.targets(live.record, index)
        self._backends.drop(live, chosen)
        changes = machine.Changes()
        now = time.time()
        for each in chosen:
            if live.record.status_of(each) is not target:
                machine.set_status(changes, live.record, each, target, now,
                                   reason="forced by the user", force=True)
        self._ctx.commit(changes)

