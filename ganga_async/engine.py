"""The engine: the public async API over one task group running the pipeline.

::

    submit() ─▶ accept ─▶ split ─▶ submit ─▶ backend drivers ─▶ monitor ─▶ finalise
                        (ganga_async.pipeline: one module per stage)

The engine opens the repository, starts the ShareRef actor, the stages and the credential
manager, resumes what an earlier engine left (:mod:`ganga_async.pipeline.recovery`) and closes
them all in order. Its methods check their arguments, find the job's record and hand the work
to the stages; every status change is the state machine's (:mod:`ganga_async.model.machine`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ._exceptions import (
    EngineClosedError,
    GangaAsyncError,
    JobNotFoundError,
    JobSpecError,
    JobStateError,
    WaitTimeoutError,
)
from ._log import get_logger, user_logger
from ._workspace import listing, tail_of
from .applications.base import Application
from .config import Config, load_config
from .credentials.manager import CredentialManager
from .events import CredentialEvent, EventHub, EventStream, JobEvent, PostprocessEvent, RetryEvent
from .model import machine
from .model.job import SUMMARY_COLUMNS, Job
from .model.record import parse_fqid
from .persistence.lock import EngineLock, claim_gangadir
from .persistence.queries import summary_rows
from .persistence.repository import Repository
from .pipeline.accept import AcceptStage
from .pipeline.actions import Actions
from .pipeline.allocator import MemoryReturn
from .pipeline.context import Chunk, Context, Ended, Live, Recorder, Registry
from .pipeline.monitor import Backends, FinaliseStage
from .pipeline.notify import NotifyStage
from .pipeline.postprocess import Postprocessing, merge_by_hand
from .pipeline.recovery import recover
from .pipeline.retry import Retrier
from .pipeline.split import SplitStage
from .pipeline.store import JobStore
from .pipeline.submit import SubmitStage
from .pipeline.tokens import SubmitTokens
from .prepared import _preparing
from .prepared.box import Box
from .prepared.sharedir import SharedArea, ShareDir
from .prepared.shareref import ShareRef
from .states import Status
from .tasks import Tasks

__all__ = ["Engine", "PEEK_LIMIT", "SUMMARY_COLUMNS"]

log = get_logger(__name__)
say = user_logger()


PEEK_LIMIT = 16 << 20
"""The most of a file :meth:`Engine.peek` reads (16 MiB): a job's stdout may be gigabytes."""

_SHAREREF_CLOSE_TIMEOUT = 60.0
"""Seconds the ShareDir cleanup may take when the engine closes."""


class Engine:
    """The async job engine; use it as ``async with Engine(gangadir=path) as engine:``.

    It embeds in a running asyncio application (anyio's asyncio backend) and never starts an
    event loop of its own. ``gangadir`` defaults to ``[Configuration] gangadir``; ``config`` to
    :func:`~ganga_async.load_config`. With ``monitoring=False`` no backend is polled (useful to
    inspect a repository without touching running jobs).

    Jobs live in a SQLite repository under the gangadir and in per-job workspaces. When the
    engine opens it resumes what an earlier one left: submissions are completed, active jobs are
    monitored again, Local processes that outlived their engine are adopted, and jobs held for
    credentials wait at the gate again.

    ``engine.credentials`` is its :class:`~ganga_async.credentials.CredentialManager`.
    Prepared applications keep their files in ShareDirs under ``<gangadir>/shared/<user>``;
    ``engine.shareref`` holds their reference counts and ``engine.box`` named objects kept in
    the repository. When the engine closes, ShareDirs nothing references are deleted.
    """

    def __init__(
        self,
        gangadir: str | os.PathLike[str] | None = None,
        *,
        config: Config | None = None,
        monitoring: bool = True,
    ) -> None:
        self.config = config if config is not None else load_config()
        self.gangadir = Path(gangadir).expanduser() if gangadir is not None else self.config.gangadir
        self.monitoring = monitoring
        user = self.config.user
        self.repository = Repository(
            self.gangadir / "repository" / user / "jobs.sqlite",
            flush_interval=self.config["Repository"]["flush_interval"],
        )
        self._lock = EngineLock.of(self.gangadir, user)
        self.workspace = self.gangadir / "workspace" / user
        self.shared = SharedArea.for_user(self.gangadir, user)
        self.shareref = ShareRef(self.repository, self.shared, owners=self._prepared_owners,
                                 unprepare=self._unprepare_owners)
        """The reference counts of ShareDirs (:class:`~ganga_async.ShareRef`)."""
        self.box = Box(self.repository, self.shareref, self.shared, self._check_open)
        """Named jobs and applications kept in the repository (:class:`~ganga_async.Box`)."""
        self._hub = EventHub()
        self.credentials = CredentialManager(self.config, publish=self._hub.publish)
        registry = Registry()
        self._memory = MemoryReturn()
        registry.jobs.rested = self._memory.job_ended
        self._ctx = Context(
            config=self.config, gangadir=self.gangadir, workspace=self.workspace,
            monitoring=monitoring, repository=self.repository, shared=self.shared,
            shareref=self.shareref, credentials=self.credentials, hub=self._hub,
            registry=registry, recorder=Recorder(self.repository, self._hub, registry),
        )
        self._backends = Backends(self._ctx, self._lock)
        self._postprocessing = Postprocessing(self._ctx)
        self._ctx.postprocess = self._postprocessing.start
        self._retrier = Retrier(self._ctx, self._backends)
        self._actions = Actions(self._ctx, self._backends)
        self._ctx.retry = self._retrier.schedule
        self._ctx.notify = NotifyStage(self._ctx, self._hub).watch
        self._tokens = SubmitTokens(self.repository, self.get)
        self.tasks = Tasks(self)
        """Tasks: transforms whose units create and submit jobs (:class:`~ganga_async.tasks.Tasks`)."""
        self._store: JobStore | None = None
        self._to_accept: MemoryObjectSendStream[tuple[Live, MemoryObjectSendStream[Any]]] | None = None
        self._closing = False
        self._stack: AsyncExitStack | None = None

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        if self._stack is not None or self._ctx.tg is not None:
            raise EngineClosedError("this engine is already running")
        ctx = self._ctx
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise GangaAsyncError(
                "the engine needs anyio's asyncio backend (aiosqlite is asyncio-only), not "
                "trio or another loop: run it with anyio.run(main, backend='asyncio'), or use "
                "the blocking interface (ganga_async.gpi), which runs its own asyncio loop"
            ) from None
        self._store = JobStore(ctx, loop, self.box)
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            stack.callback(self._lock.release)
            claim_gangadir(self.gangadir)
            if self.monitoring:
                await self._lock.acquire()
            stack.push_async_callback(self.repository.aclose)  # nothing to do until it opens
            stack.push_async_callback(self._release)
            tg = anyio.create_task_group()
            await stack.enter_async_context(tg)
            stack.push_async_callback(self._stop)
            ctx.tg = tg
            self._closing = False
            if self.monitoring:  # the default backend's runner starts while the engine opens
                tg.start_soon(self._backends.warm_up, "Local")
            await self.repository.open()
            self._store.open = True
            await tg.start(self.repository.run)
            await tg.start(self.shareref.run)
            await tg.start(self._memory.run)
            size = self.config["Pipeline"]["stream_size"]
            self._to_accept, accept_recv = anyio.create_memory_object_stream[
                tuple[Live, MemoryObjectSendStream[Any]]](size)
            ctx.to_split, split_recv = anyio.create_memory_object_stream[
                tuple[Live, MemoryObjectSendStream[Any] | None]](size)
            ctx.to_submit, submit_recv = anyio.create_memory_object_stream[Chunk](size)
            ctx.to_finalise, finalise_recv = anyio.create_memory_object_stream[list[Ended]](size)
            await tg.start(AcceptStage(ctx).run, accept_recv)
            await tg.start(SplitStage(ctx).run, split_recv)
            await tg.start(SubmitStage(ctx, self._backends).run, submit_recv)
            await tg.start(FinaliseStage(ctx).run, finalise_recv)
            await tg.start(self.credentials.run)
            await recover(ctx, self._store, self._backends, self._postprocessing, self._retrier)
            await tg.start(self.tasks.serve)
        except BaseException:
            # _stop (once registered) cancels what started; _release then forgets the task group.
            await stack.__aexit__(None, None, None)
            ctx.tg = None
            raise
        self._stack = stack
        log.debug("engine started", gangadir=str(self.gangadir))
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        await stack.__aexit__(*exc_info)

    async def _stop(self) -> None:
        """Refuse new calls and cancel the stages. Their task group stays in place until they
        have ended, so a stage in the middle of its work meets the cancellation at its next
        await instead of finding the engine half gone. The ShareRef actor is not cancelled: it
        runs the ShareDir cleanup and stops when its inbox is closed."""
        ctx = self._ctx
        self._closing = True
        self._hub.close()
        if ctx.tg is not None:
            ctx.tg.cancel_scope.cancel()
        for stream in (self._to_accept, ctx.to_split, ctx.to_submit, ctx.to_finalise):
            if stream is not None:  # absent when the engine failed to open before
                stream.close()
        with anyio.CancelScope(shield=True), anyio.move_on_after(_SHAREREF_CLOSE_TIMEOUT):
            try:
                await self.shareref.aclose()
            except GangaAsyncError as exc:
                log.error("cleaning up ShareDirs failed", error=str(exc))

    async def _release(self) -> None:
        """Once the stages have ended: close the drivers and wake every waiter; the repository
        is flushed and closed after this."""
        self._ctx.tg = None
        if self._store is not None:
            self._store.store_new_descriptions()
            self._store.open = False
        await self._backends.aclose()
        self._ctx.registry.wake_all()
        log.debug("engine stopped", gangadir=str(self.gangadir))

    def _check_open(self) -> None:
        """Guard of the public API: refuse calls before the engine runs and once it closes."""
        if self._ctx.tg is None or self._closing or self._store is None:
            raise EngineClosedError("the engine is not running; use `async with Engine(...) as engine:`")

    def check_running(self) -> None:
        """Raise EngineClosedError unless the engine runs (for its parts, e.g. ``tasks``)."""
        self._check_open()

    async def _working(self) -> None:
        """Guard of the calls that submit, kill or delete: the engine runs and holds the
        gangadir's lock (an engine opened with ``monitoring=False`` takes it now, or raises
        RepositoryLockedError while another engine works on the gangadir)."""
        self._check_open()
        await self._lock.acquire()

    def _running_store(self) -> JobStore:
        self._check_open()
        assert self._store is not None
        return self._store

    # -- public API -------------------------------------------------------------------

    async def add(self, job: Job) -> Job:
        """Persist a new job (status ``new``) so it gets an id; submit does this when needed."""
        store = self._running_store()
        if job.id is not None and job.master is None:
            return job
        if job.master is not None:
            raise JobStateError("a subjob cannot be added on its own; copy it with job.copy()")
        if job.status is not Status.NEW:
            raise JobStateError(f"job {job.fqid} is {job.status}; only new jobs are added")
        await store.add(job)
        return job

    async def prepare(self, target: Job | Application, *, force: bool = False) -> ShareDir:
        """Prepare a new job's application, or an application: copy the files it needs into a
        new ShareDir (``<gangadir>/shared/<user>/conf-<uuid>``) and return that.

        A stored job then holds a reference to it; an application on its own holds one for
        as long as it lives. Raises JobStateError when already prepared (unless ``force``)
        or when the job is not new; a failed copy leaves neither a directory nor a count.
        """
        self._check_open()
        app = _preparing.application_of(target, "prepared")
        return await _preparing.prepare(app, self.shared, self.shareref, force=force)

    async def unprepare(self, target: Job | Application) -> None:
        """Unprepare a new job's application, or an application, releasing its reference."""
        self._check_open()
        app = _preparing.application_of(target, "unprepared")
        if app.is_prepared is not None:
            app.is_prepared = None
            await self.shareref.flush()

    async def submit(self, job: Job, *, token: str | None = None) -> Job:
        """Submit a new job: returns once it is validated, accepted and persisted with all its
        subjobs (``job.subjobs`` is complete); submission to the backend goes on in the background.

        Raises :class:`JobSpecError` (the job stays ``new``) when the description cannot run,
        e.g. a missing executable or a splitter that fails, and :class:`JobStateError` when the
        job is not ``new``. A repeat with the same ``token`` returns the first one's job instead,
        also after a crash or restart (:mod:`~ganga_async.pipeline.tokens`).
        """
        await self._working()
        if token is not None:
            return await self._tokens.once(token, lambda checked: self._submit(job, checked))
        return await self._submit(job, None)

    async def _submit(self, job: Job, token: str | None) -> Job:
        if job.master is not None:
            raise JobStateError(f"subjob {job.fqid} cannot be submitted on its own; submit its master")
        if job.status is not Status.NEW:
            raise JobStateError(
                f"job {job.fqid} is {job.status}; only new jobs are submitted "
                "(use resubmit() for finished ones, or job.copy())"
            )
        if self._ctx.tg is not None:  # its backend gets ready while the job is stored and checked
            self._ctx.tg.start_soon(self._backends.warm_up, job.backend.plugin_name)
        await self.add(job)
        live, _ = self._ctx.registry.find(job)
        live.token = token
        say.info(f"submitting job {job.fqid}")
        assert self._to_accept is not None
        reply_send, reply_recv = anyio.create_memory_object_stream[BaseException | None](1)
        with reply_recv:
            await self._to_accept.send((live, reply_send))
            try:
                outcome = await reply_recv.receive()
            except anyio.EndOfStream:
                raise EngineClosedError("the engine stopped before the job was accepted") from None
        if outcome is not None:
            raise outcome
        return job

    async def wait(self, job: Job, timeout: float | None = None) -> Job:  # noqa: ASYNC109 (Ganga's API)
        """Wait until the job (and every subjob) is final; raise WaitTimeoutError after ``timeout``."""
        self._check_open()
        if job.status is Status.NEW:
            raise JobStateError(f"job {job.fqid} is new: submit it before waiting for it")
        live, index = self._ctx.registry.find(job)
        waiters = self._ctx.registry.waiters
        try:
            with anyio.fail_after(timeout):
                while not machine.is_final(live.record, index):
                    await waiters.setdefault(job.fqid, anyio.Event()).wait()
                    self._check_open()
        except TimeoutError:
            raise WaitTimeoutError(f"job {job.fqid} is still {job.status} after {timeout} s") from None
        return job

    def events(self, *, masters_only: bool = False) -> EventStream[JobEvent]:
        """Subscribe to status transitions: ``async for event in engine.events(): ...``.

        The subscription starts now, so no event after this call is missed; iteration ends when
        the engine closes. Close it (or use ``async with``) when you stop reading. With
        ``masters_only`` it leaves out subjobs' transitions (the engine then need not make them)."""
        self._check_open()
        return self._hub.subscribe(self.config["Pipeline"]["event_buffer"], JobEvent, masters_only)

    def credential_events(self) -> EventStream[CredentialEvent]:
        """Subscribe to what happens to the credentials jobs need: running short, expired,
        renewed, renewal failed, valid again (see :class:`~ganga_async.events.CredentialEvent`)."""
        self._check_open()
        return self._hub.subscribe(self.config["Pipeline"]["event_buffer"], CredentialEvent)

    def postprocess_events(self) -> EventStream[PostprocessEvent]:
        """Subscribe to postprocessors' outcomes: a merger's files, a checker passing or
        failing a (sub)job (see :class:`~ganga_async.events.PostprocessEvent`)."""
        self._check_open()
        return self._hub.subscribe(self.config["Pipeline"]["event_buffer"], PostprocessEvent)

    def retry_events(self) -> EventStream[RetryEvent]:
        """Subscribe to retries: each failed (sub)job the retry policy submits again, with the
        attempt number and the delay before it (see :class:`~ganga_async.events.RetryEvent`)."""
        self._check_open()
        return self._hub.subscribe(self.config["Pipeline"]["event_buffer"], RetryEvent)

    async def get(self, job_id: int | str) -> Job:
        """The job with this id, or subjob with this fqid (``"3.17"``)."""
        store = self._running_store()
        master_id, index = parse_fqid(job_id)
        live = await store.load_id(master_id)
        if live is None:
            raise JobNotFoundError(f"no job {master_id} in {self.repository.path}")
        if index is None:
            return live.job
        try:
            return live.job.subjobs[index]
        except IndexError as exc:
            raise JobNotFoundError(str(exc)) from None

    async def jobs(self, status: str | Status | None = None, name: str | None = None) -> list[Job]:
        """Every master job, optionally only those in ``status`` or with ``name``."""
        store = self._running_store()
        statuses = [str(Status.parse(status))] if status is not None else None
        await self.repository.flush()
        rows = await self.repository.job_rows(statuses=statuses)
        return [(await store.load(row)).job for row in rows if name is None or row.name == name]

    async def summary(self, status: str | Status | None = None, name: str | None = None,
                      ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """One dict per master (the keys of :data:`SUMMARY_COLUMNS`), optionally only those in
        ``status``, with ``name`` or among ``ids`` (in their order), read without loading any
        job (by the status index): fast on a repository of any size."""
        self._check_open()
        wanted = str(Status.parse(status)) if status is not None else None
        live = {job.id: str(job.record.status) for job in self._ctx.registry.jobs.values()}
        rows = await summary_rows(self.repository, live, status=wanted, name=name, ids=ids)
        return [dict(zip(SUMMARY_COLUMNS, row, strict=True)) for row in rows]

    async def kill(self, job: Job) -> None:
        """Kill a job (every active subjob) or one subjob. Raises JobStateError if none is active."""
        await self._working()
        await self._actions.kill(job)

    async def release(self, job: Job) -> None:
        """Release a job (every subjob its batch system holds) or one subjob held by its batch
        system (HTCondor's Held, with the HoldReason as its reason), in one action. Raises
        JobStateError when nothing is held there."""
        await self._working()
        await self._actions.release(job)

    async def resubmit(self, job: Job, *, statuses: Sequence[str | Status] = ("failed",)) -> Job:
        """Submit again the subjobs in ``statuses`` (failed ones by default), or a final unsplit
        job or subjob. Raises JobStateError when nothing qualifies."""
        await self._working()
        await self._actions.resubmit(job, statuses)
        return job

    async def remove(self, job: Job) -> None:
        """Kill the job if active, then delete it from the repository and its workspace."""
        await self._working()
        await self._actions.remove(job, self._running_store())

    async def force_status(self, job: Job, status: str | Status, *, kill: bool = True) -> None:
        """Force a job (all its subjobs) or a subjob into ``failed`` or ``completed``, as Ganga's
        ``force_status``; active ones are killed at their backend first (with ``kill=False``
        they are only no longer monitored: Ganga's ``force=True``)."""
        await self._working()
        await self._actions.force_status(job, Status.parse(status), kill=kill)

    async def peek(self, job: Job, filename: str = "stdout", *, limit: int = PEEK_LIMIT) -> str:
        """The text of ``filename`` in the job's output (or kept working) directory; with ``""``
        the directory listing. A file over ``limit`` bytes is not read whole: its last ``limit``
        bytes come after a line saying how much was left out and where the whole file is."""
        self._check_open()
        outputdir, workdir = Path(job.outputdir), Path(job.workdir)  # the GPI's are strings
        places = [outputdir, workdir]
        if filename:
            if Path(filename).is_absolute() or ".." in Path(filename).parts:
                raise JobSpecError("filename", "must name a file inside the job's output directory")
            for place in places:
                path = anyio.Path(place / filename)
                if await path.is_file():
                    return await anyio.to_thread.run_sync(tail_of, Path(path), limit)
        names = await listing(outputdir, "")
        if workdir.parent != outputdir:
            names += await listing(workdir, "work/", skip_empty_dirs=True)
        if not filename:
            return "\n".join(sorted(names))
        raise FileNotFoundError(
            f"job {job.fqid} has no {filename!r} (yet); its files: "
            f"{', '.join(sorted(names)) or 'none yet'} (peek(job, '') lists what there is)"
        )

    async def merge(self, job: Job, outputdir: str | os.PathLike[str] | None = None) -> list[Path]:
        """Run the job's mergers now, by hand, in a worker thread: into ``outputdir`` (default:
        the job's output directory, replacing earlier results). Returns the files written;
        raises PostProcessError saying why a merge cannot be done."""
        self._check_open()
        return await merge_by_hand(job, outputdir, self.config)

    # -- the ShareRef actor's callbacks -----------------------------------------------

    async def _prepared_owners(self) -> list[tuple[str, str]]:
        return await self._opened_store().prepared_owners()

    async def _unprepare_owners(self, holders: Sequence[str]) -> None:
        await self.tasks.unprepare([h for h in holders if h.startswith("task:")])
        await self._opened_store().unprepare_owners([h for h in holders if not h.startswith("task:")])

    def _opened_store(self) -> JobStore:
        """The job store, also while the engine closes (the ShareRef actor's last cleanup)."""
        if self._store is None:
            raise EngineClosedError("the engine is not running; use `async with Engine(...) as engine:`")
        return self._store
