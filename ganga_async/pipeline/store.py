"""The stored jobs an engine holds: adding and loading them, binding each to its record, and
the ShareDir references their prepared applications hold (``job:<id>`` holders)."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from .._exceptions import RepositoryError
from ..applications.base import Application
from ..config import Config
from ..model.job import Job
from ..model.machine import is_final
from ..model.record import JobRecord
from ..model.retry import Attempt
from ..model.subjobs import SubjobTable
from ..persistence import encoding
from ..persistence.repository import JobRow
from ..prepared import _preparing
from ..prepared.box import Box
from ..prepared.shareref import holder_label
from ..states import Status
from .accept import sharedir_path
from .context import Context, Live, engine_log
from .postprocess import holds_master
from .results import read_results
from .retry import retry_policy

__all__ = ["JobStore"]

log = engine_log

LOAD_SLICE = 20_000
"""Stored subjob rows put into a loaded master's table between two checkpoints (a few ms)."""
BUILD_IN_THREAD = 10_000
"""Subjobs from which a loaded master's Job is built in a worker thread."""


class JobStore:
    """Adds new jobs to the repository and loads stored ones, each bound to the record the
    engine keeps (the :class:`~ganga_async.model.job.JobObserver` of every job it binds).
    Edits a user makes to a stored job (its comment, a new job's application) reach the
    repository and the ShareRef actor from whatever thread they are made in."""

    def __init__(self, ctx: Context, loop: asyncio.AbstractEventLoop, box: Box) -> None:
        self.ctx = ctx
        self.config: Config = ctx.config
        self.box = box
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.open = False
        self._encoding: dict[int, tuple[Live, int]] = {}
        """The jobs whose large description is being encoded to be written."""

    async def add(self, job: Job) -> Live:
        """Store a new job (status ``new``) and bind it: it gets its id."""
        ctx = self.ctx
        if job.application.is_prepared is not None:
            await sharedir_path(ctx.shared, job.application)
        record = JobRecord(workspace=ctx.workspace, times={"new": time.time()})
        record.id = await ctx.repository.insert_job({
            "name": job.name, "comment": job.comment, "status": str(Status.NEW),
            "application": job.application.plugin_name, "backend": job.backend.plugin_name,
            "spec": await encoding.encode(job.spec()), "times": record.times,
        })
        live = self._bind(job, record)
        await anyio.to_thread.run_sync(_make_dirs, Path(job.inputdir), Path(job.outputdir))
        _preparing.attach(job.application, _holder(live.id),
                          functools.partial(self._prepared_changed, live), ctx.shareref,
                          announce=job.application.is_prepared is not None)
        log.info("job added", job_id=live.id)
        if job.application.is_prepared is not None:
            await ctx.shareref.flush()
        return live

    async def load_id(self, job_id: int) -> Live | None:
        """Stored job ``job_id``, from memory if it is there; None when there is no such job.
        One that has just left memory may still have writes queued: they are written before
        it is read, so it is loaded as it is now."""
        live = self.ctx.registry.jobs.get(job_id)
        if live is not None:
            return live
        await self.ctx.repository.flush()
        rows = await self.ctx.repository.job_rows(ids=[job_id])
        return await self.load(rows[0]) if rows else None

    async def load(self, row: JobRow) -> Live:
        """The stored job of ``row``, from memory if it is there."""
        live = self.ctx.registry.jobs.get(row.id)
        if live is not None:
            return live
        build = functools.partial(Job.from_spec, row.spec, name=row.name, comment=row.comment)
        # A master of 10^4+ subjobs may have as many argument lists to check (0.5 s at 10^6):
        # built in a worker thread, the interpreter lets the loop run every switch interval.
        job = await anyio.to_thread.run_sync(build) if (row.n_subjobs or 0) >= BUILD_IN_THREAD \
            else build()
        record = JobRecord(row.id, self.ctx.workspace, status=Status.parse(row.status),
                           times=dict(row.times), submit_counter=row.submit_counter,
                           backend_id=row.backend_id, exitcode=row.exitcode, reason=row.reason)
        record.retry_at = row.retry_at
        if row.n_subjobs:
            table = SubjobTable()
            rows = await self.ctx.repository.subjob_rows(row.id)
            for start in range(0, len(rows), LOAD_SLICE):  # 10^6 rows: the loop free between
                if start:
                    await anyio.lowlevel.checkpoint()
                table.extend(rows[start:start + LOAD_SLICE])
            del rows
            record.table = table
        if row.submit_counter > 1 or row.n_subjobs:
            stored = await self.ctx.repository.attempt_rows(row.id)
            record.attempts = {index: [Attempt(*a) for a in runs] for index, runs in stored.items()}
        if job.postprocessors and record.status is not Status.NEW:
            record.results = await anyio.to_thread.run_sync(read_results, record.jobdir)
        live = self._bind(job, record)
        _preparing.attach(job.application, _holder(live.id),
                          functools.partial(self._prepared_changed, live), self.ctx.shareref,
                          announce=False)
        return live

    def _bind(self, job: Job, record: JobRecord) -> Live:
        record.hold_final = holds_master(job.postprocessors)
        record.retry = retry_policy(job, self.ctx.config)
        live = Live(job, record)
        job.bind(record, _Observer(self, live))
        jobs = self.ctx.registry.jobs
        jobs[live.id] = live
        if job.postprocessors and self.ctx.notify is not None:
            self.ctx.notify(job)
        if is_final(record):
            jobs.rest(live.id)
        return live

    # -- the JobObserver --------------------------------------------------------------

    def edited(self, job: Job, name: str, previous: Any) -> None:
        """A stored job's field changed (from any thread): persist a comment, or the new job's
        description (its name, components and files, read when the write is queued so that
        the latest edit wins); follow a replaced application for its ShareDir reference."""
        if name == "comment":
            self._call_soon(self._store_comment, job)
            return
        if name == "application" and previous is not None:
            self._call_soon(self._application_replaced, job, previous)
        self._call_soon(self._store_description, job)

    def _call_soon(self, callback: Any, *args: Any) -> None:
        if not self.open:
            return
        if threading.get_ident() == self._loop_thread:
            callback(*args)
            return
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            pass  # the loop has closed

    def _store_comment(self, job: Job) -> None:
        if self.open and job.id is not None:
            self.ctx.repository.queue_job(job.id, comment=job.comment)

    def _store_description(self, job: Job) -> None:
        live = self.ctx.registry.jobs.get(job.id) if job.id is not None else None
        if not self.open or live is None or live.job is not job or live.record.status is not Status.NEW:
            return
        self._queue_description(live, name=job.name, application=job.application.plugin_name,
                                backend=job.backend.plugin_name)

    def _queue_description(self, live: Live, **columns: Any) -> None:
        """Queue the job's description with ``columns``; one that cannot be stored (a value
        put inside a list) is logged and left as stored, and submit() refuses it. A large
        description is encoded a slice at a time in a task of its own and queued when done,
        unless another write of it began meanwhile (``columns`` are queued at once)."""
        live.spec_writes += 1
        try:
            spec = live.job.spec()
            text = encoding.encode_small(spec)
            if text is None and self.ctx.tg is not None:
                if columns:
                    self.ctx.repository.queue_job(live.id, **columns)
                self._encoding[live.id] = (live, live.spec_writes)
                self.ctx.tg.start_soon(self._write_description, live, live.spec_writes, spec)
                return
            # (large, with the engine closing: the repository encodes it at once)
            self.ctx.repository.queue_job(live.id, spec=spec if text is None else text, **columns)
        except (RepositoryError, TypeError, ValueError) as exc:
            log.error("the job's description cannot be stored; it is kept as it was",
                      job_id=live.id, error=str(exc))

    async def _write_description(self, live: Live, writes: int, spec: dict[str, Any]) -> None:
        try:
            text = await encoding.encode_while(spec, lambda: live.spec_writes == writes)
        except (TypeError, ValueError) as exc:
            text = None
            log.error("the job's description cannot be stored; it is kept as it was",
                      job_id=live.id, error=str(exc))
        if self._encoding.get(live.id) == (live, writes):
            del self._encoding[live.id]
            if text is not None and live.spec_writes == writes:  # no other write began meanwhile
                self.ctx.repository.queue_job(live.id, spec=text)

    def store_new_descriptions(self) -> None:
        """Queue the description of every loaded new job, for edits made inside a value (a list
        appended to) that no assignment announced; the engine does this as it closes."""
        for live in list(self.ctx.registry.jobs.values()):
            if live.record.status is Status.NEW:
                self._store_description(live.job)
        for live, writes in list(self._encoding.values()):  # large, its encoding cut short
            if live.spec_writes == writes and live.record.status is not Status.REMOVED:
                self._queue_description(live)
        self._encoding.clear()

    def _application_replaced(self, job: Job, previous: Application | None) -> None:
        live = self.ctx.registry.jobs.get(job.id) if job.id is not None else None
        if live is None or live.job is not job:
            return
        if previous is not None:
            _preparing.detach(previous, _holder(live.id))
        _preparing.attach(job.application, _holder(live.id),
                          functools.partial(self._prepared_changed, live), self.ctx.shareref)

    def _prepared_changed(self, live: Live) -> None:
        """A stored job's application was prepared or unprepared (called from any thread):
        store its description and have the ShareRef actor re-read the job's reference."""
        self._call_soon(self._store_prepared, live)

    def _store_prepared(self, live: Live) -> None:
        if not self.open or self.ctx.registry.jobs.get(live.id) is not live:
            return
        if live.record.status is Status.REMOVED:
            return
        self._queue_description(live)
        self.ctx.shareref.refresh_soon(_holder(live.id), functools.partial(self.stored_sharedir, live.id))

    async def forget(self, live: Live) -> None:
        """A removed job (already ``removed``) leaves memory, and its ShareDir reference goes."""
        self.ctx.registry.jobs.pop(live.id, None)
        if live.job.application.is_prepared is not None:
            self.ctx.shareref.refresh_soon(_holder(live.id),
                                           functools.partial(self.stored_sharedir, live.id))
            await self.ctx.shareref.flush()

    def stored_sharedir(self, job_id: int) -> str | None:
        """The ShareDir stored job ``job_id`` references now (none once removed)."""
        live = self.ctx.registry.jobs.get(job_id)
        if live is None or live.record.status is Status.REMOVED:
            return None
        sharedir = live.job.application.is_prepared
        return None if sharedir is None else sharedir.name

    async def prepared_owners(self) -> list[tuple[str, str]]:
        """Every stored owner of a ShareDir reference, for a ShareRef rebuild."""
        await self.ctx.repository.flush()
        return await self.ctx.repository.prepared_owners()

    async def unprepare_owners(self, holders: Sequence[str]) -> None:
        """Unprepare the applications of stored jobs and box entries (``job:3``, ``box:x``),
        whatever their status: their ShareDir is gone."""
        for holder in holders:
            kind, ident = holder_label(holder)
            if kind == "box":
                await self.box.unprepare(ident)
                continue
            live = await self.load_id(int(ident))
            if live is not None:
                _preparing.unprepare(live.job.application)
        await self.ctx.repository.flush()
        await self.ctx.shareref.flush()


class _Observer:
    """What a stored job tells of its edits (the store's :meth:`JobStore.edited`); it also
    keeps the job's :class:`Live` for as long as the Job object (or a subjob of it) is in use,
    which is how a finished job the engine no longer holds stays the same object for its user
    (see :class:`~ganga_async.pipeline.context.LiveJobs`)."""

    __slots__ = ("store", "live", "config")

    def __init__(self, store: JobStore, live: Live) -> None:
        self.store = store
        self.live = live
        self.config = store.config

    def edited(self, job: Job, name: str, previous: Any) -> None:
        self.store.edited(job, name, previous)


def _make_dirs(*paths: Path) -> None:
    """Create a stored job's input and output directories, as Ganga does when it stores a job."""
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)


def _holder(job_id: int) -> str:
    """The ShareRef holder name of a stored job."""
    return f"job:{job_id}"
