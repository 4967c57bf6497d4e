"""The task stage: ``engine.tasks`` runs tasks on the engine's loop, driven by job events.

::

    engine.tasks.add(t) ─▶ units stored ─▶ run(t) ─▶ jobs for new units, within float
                                                         │ engine.submit
    engine.events(): a unit's job became final ─▶ model.task.job_ended ─▶ store ─▶ more jobs

Nothing polls: a unit moves the moment its job's final event arrives. The rules are
:mod:`ganga_async.model.task`'s; this stage carries them out and writes every change to the
repository before acting on it: a unit's job id is stored before the job is submitted, so an
engine that opens again (:meth:`Tasks.run`) finds each unit's job and submits it, waits for it
or takes its end, and never makes a second job for it. Should the event queue overflow (its
``lost`` count grows), every running unit's job is looked at again.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import anyio
from anyio.abc import TaskStatus as AnyioTaskStatus

from ._exceptions import EngineClosedError, GangaAsyncError, JobNotFoundError, JobSpecError, WaitTimeoutError
from ._log import get_logger, user_logger
from .events import EventStream, JobEvent
from .model.job import Job
from .model.task import (
    CoreTask,
    TaskChainInput,
    TaskStatus,
    Unit,
    UnitStatus,
    add_chained,
    chain_blocked,
    chain_pending,
    done,
    job_ended,
    release_held,
    to_submit,
)
from .persistence import tasks as stored
from .persistence.repository import Repository
from .pipeline.tokens import check_token
from .prepared import _preparing
from .prepared.shareref import ShareRef
from .states import FINAL, Status

__all__ = ["TaskEngine", "Tasks"]

log = get_logger(__name__)
say = user_logger()


class TaskEngine(Protocol):
    """What the task stage uses of its engine (:class:`~ganga_async.engine.Engine`)."""

    repository: Repository
    shareref: ShareRef

    def check_running(self) -> None: ...

    def events(self, *, masters_only: bool = False) -> EventStream[JobEvent]: ...

    async def add(self, job: Job) -> Job: ...

    async def get(self, job_id: int | str) -> Job: ...

    async def submit(self, job: Job, *, token: str | None = None) -> Job: ...


class Tasks:
    """The tasks of one engine (``engine.tasks``): add, run, pause, remove and wait for them.

    Every task stored in the repository is loaded when the engine opens, and those that were
    running go on. Methods raise EngineClosedError while the engine is not running.
    """

    def __init__(self, engine: TaskEngine) -> None:
        self._engine = engine
        self._tasks: dict[int, CoreTask] = {}
        self._by_job: dict[int, tuple[CoreTask, int, Unit]] = {}
        self._lock = anyio.Lock()
        self._changed = anyio.Event()

    # -- the stage --------------------------------------------------------------------

    async def serve(self, *, task_status: AnyioTaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The stage (in the engine's task group): load the stored tasks, take up those
        running, then follow the job events until the engine closes."""
        engine = self._engine
        for task in await stored.load_tasks(engine.repository):
            assert task.id is not None
            self._tasks[task.id] = task
            for i, _, unit in task.units():
                if unit.job_id is not None:
                    self._by_job[unit.job_id] = (task, i, unit)
        events = engine.events(masters_only=True)
        task_status.started()
        try:
            await self._follow(events)
        finally:
            events.close()
            self._changed.set()  # waiters find the engine closed

    async def _follow(self, events: EventStream[JobEvent]) -> None:
        await self._look_again_at_all()
        lost = 0
        async for event in events:
            if events.lost != lost:
                lost = events.lost
                await self._look_again_at_all()
            # The ends queued meanwhile are taken together: one write and one round of
            # submissions per task for all of them, not one per job.
            ended = [e.job_id for e in (event, *events.queued(sys.maxsize))
                     if e.index is None and e.new in FINAL and e.job_id in self._by_job]
            if ended:
                async with self._lock:
                    await self._jobs_final(ended)

    async def _jobs_final(self, job_ids: Sequence[int]) -> None:
        changed: dict[int, tuple[CoreTask, list[tuple[int, Unit]]]] = {}
        for job_id in job_ids:
            try:
                taken = await self._take_end(job_id)
            except GangaAsyncError as exc:  # must not stop the engine; looked at again
                log.error("a task could not take a job's end", job_id=job_id, error=str(exc))
                continue
            if taken is not None:
                task, i, unit = taken
                changed.setdefault(id(task), (task, []))[1].append((i, unit))
        for task, units in changed.values():
            try:
                await self._advance(task, units)
            except GangaAsyncError as exc:
                log.error("a task could not go on", task_id=task.id, error=str(exc))

    async def _look_again_at_all(self) -> None:
        async with self._lock:
            for task in list(self._tasks.values()):
                try:
                    await self._look_again(task)
                except GangaAsyncError as exc:
                    log.error("a task could not be taken up", task_id=task.id, error=str(exc))

    async def _look_again(self, task: CoreTask) -> None:
        """Take up a task as its units' jobs are now: submit the ones stored but not yet
        submitted, take the ends that were missed, then fill the float."""
        for i, _, unit in list(task.units()):
            if unit.status is UnitStatus.RUNNING and unit.job_id is not None:
                try:
                    job = await self._engine.get(unit.job_id)
                except JobNotFoundError:
                    await self._job_final(unit.job_id)
                    continue
                if job.status is Status.NEW:
                    await self._submit(task, i, unit, job)
                elif job.status in FINAL:
                    await self._job_final(unit.job_id)
        await self._advance(task)

    async def _job_final(self, job_id: int) -> None:
        taken = await self._take_end(job_id)
        if taken is not None:
            task, i, unit = taken
            await self._advance(task, [(i, unit)])

    async def _take_end(self, job_id: int) -> tuple[CoreTask, int, Unit] | None:
        """Move the unit whose job this is by the job's end; returns it (None when the job
        is no unit's running job, or not final after all)."""
        found = self._by_job.get(job_id)
        if found is None:
            return None
        task, i, unit = found
        if unit.job_id != job_id or unit.status is not UnitStatus.RUNNING:
            return None
        try:
            job = await self._engine.get(job_id)
            end, exitcode, reason = job.status, job.exitcode, job.reason
        except JobNotFoundError:
            end, exitcode, reason = Status.REMOVED, None, "its job was removed"
        if end not in FINAL:
            return None  # its retry policy sent it back to submitting
        del self._by_job[job_id]
        job_ended(task, task.transforms[i], unit, end, exitcode, reason)
        if unit.status in (UnitStatus.FAILED,):  # (job_ended changed it)
            say.warning(f"task {task.id} transform {i} unit {unit.index} failed: {unit.reason}")
        if task.status is TaskStatus.COMPLETED:
            say.info(f"task {task.id} ({task.name}) completed")
        return task, i, unit

    async def _advance(self, task: CoreTask, changed: Sequence[tuple[int, Unit]] = ()) -> None:
        """Make the units chains are owed and give jobs to new units within the float; store
        all of it (with the ``changed`` units) in one transaction, then submit the jobs."""
        changed = list(changed)
        for i, parents in chain_pending(task):
            chain = task.transforms[i].chain_input
            assert chain is not None
            files = [path for parent in parents for path in await self._outputs(parent, chain)]
            changed.append((i, add_chained(task, i, parents, files)))
        for i, unit in chain_blocked(task):
            say.warning(f"task {task.id} transform {i} unit {unit.index} failed: {unit.reason}")
            changed.append((i, unit))
        changed += release_held(task)
        jobs: list[tuple[int, Unit, Job]] = []
        for i, unit in to_submit(task):
            trf = task.transforms[i]
            try:
                job = trf.unit_job(unit, f"{task.name or 'task'}:{task.id}.{i}.{unit.index}")
                job.comment = f"task {task.id} transform {i} unit {unit.index}"
                await self._engine.add(job)
            except EngineClosedError:
                raise
            except GangaAsyncError as exc:
                unit.status, unit.reason = UnitStatus.FAILED, f"its job cannot be made: {exc}"
                changed.append((i, unit))
                continue
            assert job.id is not None
            unit.job_id, unit.status, unit.runs = job.id, UnitStatus.RUNNING, unit.runs + 1
            self._by_job[job.id] = (task, i, unit)
            changed.append((i, unit))
            jobs.append((i, unit, job))
        if changed:
            await stored.save_units(self._engine.repository, task, changed)
        for i, unit, job in jobs:
            await self._submit(task, i, unit, job)
        self._changed.set()
        self._changed = anyio.Event()

    async def _outputs(self, parent: Unit, chain: TaskChainInput) -> list[str]:
        """The files of the parent unit's job's output directory that the chain wants."""
        if parent.job_id is None:
            return []
        try:
            job = await self._engine.get(parent.job_id)
        except JobNotFoundError:
            return []
        outputdir = Path(job.outputdir)

        def wanted() -> list[str]:
            try:
                return sorted(str(p) for p in outputdir.iterdir()
                              if p.is_file() and chain.wants(p.name))
            except OSError as exc:  # the child's job then says what it misses
                log.warning("the outputs of a unit's job cannot be listed", job_id=parent.job_id,
                            error=str(exc))
                return []

        return await anyio.to_thread.run_sync(wanted)

    async def _submit(self, task: CoreTask, i: int, unit: Unit, job: Job) -> None:
        try:
            await self._engine.submit(job)
        except EngineClosedError:
            raise  # the job stays new; the next engine submits it
        except GangaAsyncError as exc:
            # The job stays new and refused: the unit fails with why; the rest goes on.
            self._by_job.pop(job.id or -1, None)
            unit.status, unit.reason = UnitStatus.FAILED, f"job {job.id} was refused: {exc}"
            await stored.save_units(self._engine.repository, task, [(i, unit)])
            say.warning(f"task {task.id} transform {i} unit {unit.index} failed: {unit.reason}")

    # -- the public API ---------------------------------------------------------------

    async def add(self, task: CoreTask, *, token: str | None = None) -> CoreTask:
        """Store a new task: its units are made from each transform's unit splitter (status
        ``new``, or ``hold`` for a transform that requires others) and it gets an id. Raises
        JobSpecError naming the field when it cannot run as described.

        ``token`` names this addition: a repeat with the same token (a request whose reply
        was lost, also after a restart) returns the task the first one added instead."""
        self._engine.check_running()
        if task.id is not None:
            return task
        if token is not None:
            check_token(token)
        task.check()
        for trf in task.transforms:
            trf.make_units()
        release_held(task)
        async with self._lock:
            if token is not None and (known := await stored.token_task(self._engine.repository,
                                                                       token)) is not None:
                if known not in self._tasks:
                    raise JobNotFoundError(f"task {known}, which token {token!r} added, has been "
                                           "removed; add it with a new token to run it again")
                return self._tasks[known]
            task.id = await stored.insert_task(self._engine.repository, task, token)
            self._tasks[task.id] = task
        for i, trf in enumerate(task.transforms):
            prepared = trf.application.is_prepared
            if prepared is not None:
                await self._engine.shareref.incref(stored.task_holder(task.id, i), prepared.name)
        say.info(f"task {task.id} ({task.name}) added with "
                 f"{sum(len(t.units) for t in task.transforms)} units")
        return task

    async def run(self, task: CoreTask) -> None:
        """Run a task (adding it first if needed): its new units get jobs, up to ``float``
        active at once. Units reset by hand (``trf.resetUnit(i)``, ``trf.retryFailed()``)
        and a changed ``float`` are stored first. Raises JobSpecError while ``float`` is 0."""
        if isinstance(task.float, int) and task.float == 0:
            raise JobSpecError("float", "is 0, so the task may run no job; set t.float = 10 "
                               "to run 10 units at a time")
        stored_before = task.id is not None
        await self.add(task)
        self._known(task)
        task.check()
        async with self._lock:
            if any(u.status is not UnitStatus.COMPLETED for _, _, u in task.units()):
                task.status = TaskStatus.RUNNING
            release_held(task)
            if stored_before:
                await stored.save_units(self._engine.repository, task,
                                        [(i, u) for i, _, u in task.units()])
            else:
                await stored.save_task(self._engine.repository, task)
            await self._look_again(task)

    async def pause(self, task: CoreTask) -> None:
        """Stop giving jobs to units; the jobs already running go on and are followed."""
        self._known(task)
        async with self._lock:
            if task.status is TaskStatus.RUNNING:
                task.status = TaskStatus.PAUSE
                await stored.save_task(self._engine.repository, task)

    async def remove(self, task: CoreTask) -> None:
        """Forget a task (its jobs stay in the repository, as Ganga's ``remove(False)``)."""
        task_id = self._known(task)
        async with self._lock:
            await stored.delete_task(self._engine.repository, task_id)
            del self._tasks[task_id]
            for i, trf in enumerate(task.transforms):
                if trf.application.is_prepared is not None:
                    await self._engine.shareref.decref(stored.task_holder(task_id, i))
            for job_id in [j for j, (t, _, _) in self._by_job.items() if t is task]:
                del self._by_job[job_id]
        self._changed.set()

    async def unprepare(self, holders: Sequence[str]) -> None:
        """Unprepare the applications of these transforms (``task:<id>.<transform>``): their
        ShareDir is gone (``shareref.rebuild()``, ``lookup(name, unprepare=True)``)."""
        for holder in holders:
            task_id, _, index = holder.removeprefix("task:").partition(".")
            task = self._tasks.get(int(task_id))
            if task is not None and _preparing.unprepare(task.transforms[int(index)].application):
                await stored.save_transforms(self._engine.repository, task)
            await self._engine.shareref.decref(holder)

    def get(self, task_id: int) -> CoreTask:
        """The task with this id."""
        self._engine.check_running()
        try:
            return self._tasks[task_id]
        except KeyError:
            raise JobNotFoundError(f"no task {task_id}") from None

    def all(self) -> list[CoreTask]:
        """Every task, by id."""
        self._engine.check_running()
        return [self._tasks[k] for k in sorted(self._tasks)]

    async def wait(self, task: CoreTask, timeout: float | None = None) -> CoreTask:  # noqa: ASYNC109
        """Wait until every unit of the task is completed or failed, and no chain has a unit
        still to make."""
        self._known(task)
        try:
            with anyio.fail_after(timeout):
                while not done(task):
                    await self._changed.wait()
                    self._engine.check_running()
        except TimeoutError:
            raise WaitTimeoutError(f"task {task.id} is not done after {timeout} s: "
                                   f"{task.unit_counts()}") from None
        return task

    def _known(self, task: CoreTask) -> int:
        self._engine.check_running()
        if task.id is None or self._tasks.get(task.id) is not task:
            raise JobNotFoundError(f"{task!r} is not a task of this engine; add it first")
        return task.id
