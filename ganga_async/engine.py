"""The engine: one task group running the pipeline that takes jobs from submission to a final state.

::

    submit() ─▶ prepare ─▶ split ─▶ submit ─▶ backend drivers ─▶ monitor ─▶ finalise
                   (bounded memory streams between the stages)     │
                                        credential gate ◀──────────┘

- **prepare** prepares the application if it is not (its files copied into a ShareDir),
  validates the description (inputs exist, the executable resolves, the splitter fits the
  application) and persists the intent to submit; ``Engine.submit`` returns once this stage
  accepted the job, and raises the stage's error otherwise (the job stays ``new``).
- **split** streams the splitter's output into compact subjob rows, persisted in one
  transaction that runs in the database thread, and feeds chunks of subjob indices onward.
- **submit** passes each chunk through the credential gate (a chunk whose credentials are short
  is held, and the :class:`~ganga_async.credentials.CredentialManager` resumes it by itself),
  resolves each subjob (master plus the splitter's overrides) into a
  :class:`~ganga_async.backends.SubmitUnit` and hands batches to the backend's driver.
- **monitor** (one task per backend) applies the news the driver's one stream brings and asks
  it for one bulk status sweep on the engine's schedule (the driver's shortest interval after
  news, a submission or a kill, growing by half up to its longest while sweeps find nothing);
  it pauses while a credential its jobs need has expired.
- **finalise** puts finished (sub)jobs into their final status.

Every status change goes through one method, which checks the transition table, updates the
in-memory state, queues the repository write and publishes an event. A master's status is
derived from its subjobs' counts.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from . import _plugins
from ._exceptions import (
    EngineClosedError,
    GangaAsyncError,
    JobNotFoundError,
    JobSpecError,
    JobStateError,
    PluginError,
    WaitTimeoutError,
)
from ._log import bound, get_logger
from .applications.base import Application
from .backends.base import (
    Backend,
    BackendDriver,
    BackendStatus,
    DriverContext,
    Handle,
    SubmitUnit,
)
from .config import Config, load_config
from .credentials.manager import CredentialManager, Requirement
from .events import CredentialEvent, EventStream, JobEvent, _Hub
from .model.job import Job, JobInfo, SubjobTable, apply_overrides, output_dir, work_dir
from .persistence.repository import JobRow, Repository
from .prepared import _preparing
from .prepared.box import Box
from .prepared.sharedir import SharedArea, ShareDir
from .prepared.shareref import ShareRef, holder_label
from .states import ACTIVE, FINAL, Status, allowed, derive_master_status

__all__ = ["Engine"]

log = get_logger(__name__)

SUMMARY_COLUMNS = ("id", "status", "name", "subjobs", "application", "backend", "backend_id",
                   "comment")
"""The keys of each :meth:`Engine.summary` row, in table order."""

_SHAREREF_CLOSE_TIMEOUT = 60.0
"""Seconds the ShareDir cleanup may take when the engine closes."""

_ON_BACKEND = ACTIVE | {Status.UNKNOWN}
"""Statuses in which a backend may still hold a (sub)job: to monitor again, kill or resume."""

_Chunk = tuple[Job, list[int] | None]
"""A master and the subjob indices to submit (``None``: the master itself, unsplit)."""
_Ended = tuple[Job, int | None, BackendStatus]
"""A (sub)job its backend reported ended, and how."""


class _Active:
    """A (sub)job its backend is working on."""

    __slots__ = ("job", "index", "handle", "recovered")

    def __init__(self, job: Job, index: int | None, handle: Handle, recovered: bool = False) -> None:
        self.job = job
        self.index = index
        self.handle = handle
        self.recovered = recovered
        """Taken over from an earlier engine: ``NEW`` news means submit it again."""


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
        self.workspace = self.gangadir / "workspace" / user
        self.shared = SharedArea.for_user(self.gangadir, user)
        self.shareref = ShareRef(self.repository, self.shared, owners=self._prepared_owners,
                                 unprepare=self._unprepare_owners)
        """The reference counts of ShareDirs (:class:`~ganga_async.ShareRef`)."""
        self.box = Box(self)
        """Named jobs and applications kept in the repository (:class:`~ganga_async.Box`)."""
        self._jobs: dict[int, Job] = {}
        self._drivers: dict[str, BackendDriver] = {}
        self._active: dict[str, dict[str, _Active]] = {}
        self._cadences: dict[str, _Cadence] = {}
        self._handing_over: dict[str, BackendStatus | None] = {}
        """Keys of units in a ``bulk_submit`` that has not returned, with the latest news of
        each that came meanwhile (a process can end before its submission call returns)."""
        self._driver_lock = anyio.Lock()
        self._done: dict[str, anyio.Event] = {}
        self._hub = _Hub()
        self.credentials = CredentialManager(self.config, publish=self._hub.publish)
        self._tg: TaskGroup | None = None
        self._closing = False
        self._stack: AsyncExitStack | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._prepare_send: MemoryObjectSendStream[tuple[Job, MemoryObjectSendStream[Any]]]
        self._split_send: MemoryObjectSendStream[tuple[Job, MemoryObjectSendStream[Any] | None]]
        self._submit_send: MemoryObjectSendStream[_Chunk]
        self._finalise_send: MemoryObjectSendStream[list[_Ended]]

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        if self._tg is not None:
            raise EngineClosedError("this engine is already running")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            await self.repository.open()
            stack.push_async_callback(self.repository.aclose)
            stack.push_async_callback(self._release)
            tg = anyio.create_task_group()
            await stack.enter_async_context(tg)
            stack.push_async_callback(self._stop)
            self._tg = tg
            self._closing = False
            await tg.start(self.repository.run)
            await tg.start(self.shareref.run)
            size = self.config["Pipeline"]["stream_size"]
            self._prepare_send, prepare_recv = anyio.create_memory_object_stream[
                tuple[Job, MemoryObjectSendStream[Any]]](size)
            self._split_send, split_recv = anyio.create_memory_object_stream[
                tuple[Job, MemoryObjectSendStream[Any] | None]](size)
            self._submit_send, submit_recv = anyio.create_memory_object_stream[_Chunk](size)
            self._finalise_send, finalise_recv = anyio.create_memory_object_stream[
                list[_Ended]](size)
            await tg.start(self._prepare_stage, prepare_recv)
            await tg.start(self._split_stage, split_recv)
            await tg.start(self._submit_stage, submit_recv)
            await tg.start(self._finalise_stage, finalise_recv)
            await tg.start(self.credentials.run)
            await self._recover()
        except BaseException:
            # _stop (once registered) cancels what started; _release then forgets the task group.
            await stack.__aexit__(None, None, None)
            self._tg = None
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
        self._closing = True
        self._hub.close()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        for name in ("_prepare_send", "_split_send", "_submit_send", "_finalise_send"):
            stream = getattr(self, name, None)  # absent when the engine failed to open before
            if stream is not None:
                stream.close()
        with anyio.CancelScope(shield=True), anyio.move_on_after(_SHAREREF_CLOSE_TIMEOUT):
            try:
                await self.shareref.aclose()
            except GangaAsyncError as exc:
                log.error("cleaning up ShareDirs failed", error=str(exc))

    async def _release(self) -> None:
        """Once the stages have ended: close the drivers and wake every waiter; the repository
        is flushed and closed after this."""
        self._tg = None
        with anyio.CancelScope(shield=True):
            for driver in self._drivers.values():
                await driver.aclose()
        for event in self._done.values():
            event.set()
        self._done.clear()
        log.debug("engine stopped", gangadir=str(self.gangadir))

    def _check_open(self) -> None:
        """Guard of the public API: refuse calls before the engine runs and once it closes."""
        if self._tg is None or self._closing:
            raise EngineClosedError("the engine is not running; use `async with Engine(...) as engine:`")

    # -- public API -------------------------------------------------------------------

    async def add(self, job: Job) -> Job:
        """Persist a new job (status ``new``) so it gets an id; submit does this when needed."""
        self._check_open()
        if job._id is not None:
            return job
        if job._master is not None:
            raise JobStateError("a subjob cannot be added on its own; copy it with job.copy()")
        if job.application.is_prepared is not None:
            await self._sharedir(job.application)
        now = time.time()
        job._times.setdefault("new", now)
        job_id = await self.repository.insert_job(self._row(job, Status.NEW))
        self._bind(job, job_id)
        _preparing.attach(job.application, _holder(job),
                          functools.partial(self._prepared_changed, job), self.shareref,
                          announce=job.application.is_prepared is not None)
        log.info("job added", job_id=job_id)
        if job.application.is_prepared is not None:
            await self.shareref.flush()
        return job

    async def prepare(self, target: Job | Application, *, force: bool = False) -> ShareDir:
        """Prepare a new job's application, or an application: copy the files it needs into a
        new ShareDir (``<gangadir>/shared/<user>/conf-<uuid>``) and return that.

        A stored job then holds a reference to it; an application on its own holds one for
        as long as it lives. Raises JobStateError when already prepared (unless ``force``)
        or when the job is not new; a failed copy leaves neither a directory nor a count.
        """
        self._check_open()
        app = self._application_of(target, "prepared")
        return await _preparing.prepare(app, self.shared, self.shareref, force=force)

    async def unprepare(self, target: Job | Application) -> None:
        """Unprepare a new job's application, or an application, releasing its reference."""
        self._check_open()
        app = self._application_of(target, "unprepared")
        if app.is_prepared is not None:
            app.is_prepared = None
            await self.shareref.flush()

    def _application_of(self, target: Job | Application, verb: str) -> Application:
        if not isinstance(target, Job):
            return target
        if target._master is not None:
            raise JobStateError(f"subjob {target.fqid} cannot be {verb} on its own; use its master")
        if target._status is not Status.NEW:
            raise JobStateError(
                f"job {target.fqid} is {target._status}: only a new job can be {verb}; make an "
                "editable copy with job.copy() (copy(unprepare=True) for an unprepared one)"
            )
        return target.application

    async def submit(self, job: Job) -> Job:
        """Submit a new job: returns once it is validated, accepted and persisted with all its
        subjobs (``job.subjobs`` is complete); submission to the backend goes on in the background.

        Raises :class:`JobSpecError` (the job stays ``new``) when the description cannot run,
        e.g. a missing executable or a splitter that fails, and :class:`JobStateError` when the
        job is not ``new``.
        """
        self._check_open()
        if job._master is not None:
            raise JobStateError(f"subjob {job.fqid} cannot be submitted on its own; submit its master")
        if job._status is not Status.NEW:
            raise JobStateError(
                f"job {job.fqid} is {job._status}; only new jobs are submitted "
                "(use resubmit() for finished ones, or job.copy())"
            )
        await self.add(job)
        reply_send, reply_recv = anyio.create_memory_object_stream[BaseException | None](1)
        with reply_recv:
            await self._prepare_send.send((job, reply_send))
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
        master = job._master if job._master is not None else job
        if master._status is Status.NEW:
            raise JobStateError(f"job {job.fqid} is new: submit it before waiting for it")
        try:
            with anyio.fail_after(timeout):
                while not self._is_final(job):
                    await self._done.setdefault(job.fqid, anyio.Event()).wait()
                    self._check_open()
        except TimeoutError:
            raise WaitTimeoutError(
                f"job {job.fqid} is still {job.status} after {timeout} s"
            ) from None
        return job

    def events(self) -> EventStream[JobEvent]:
        """Subscribe to status transitions: ``async for event in engine.events(): ...``.

        The subscription starts now, so no event after this call is missed; iteration ends when
        the engine closes. Close it (or use ``async with``) when you stop reading.
        """
        self._check_open()
        return self._hub.subscribe(self.config["Pipeline"]["event_buffer"], JobEvent)

    def credential_events(self) -> EventStream[CredentialEvent]:
        """Subscribe to what happens to the credentials jobs need: running short, expired,
        renewed, renewal failed, valid again (see :class:`~ganga_async.events.CredentialEvent`)."""
        self._check_open()
        return self._hub.subscribe(self.config["Pipeline"]["event_buffer"], CredentialEvent)

    async def get(self, job_id: int | str) -> Job:
        """The job with this id, or subjob with this fqid (``"3.17"``)."""
        self._check_open()
        master_id, index = _parse_fqid(job_id)
        job = self._jobs.get(master_id)
        if job is None:
            rows = await self.repository.job_rows(ids=[master_id])
            if not rows:
                raise JobNotFoundError(f"no job {master_id} in {self.repository.path}")
            job = await self._load(rows[0])
        if index is None:
            return job
        try:
            return job.subjobs[index]
        except IndexError as exc:
            raise JobNotFoundError(str(exc)) from None

    async def jobs(self, status: str | Status | None = None, name: str | None = None) -> list[Job]:
        """Every master job, optionally only those in ``status`` or with ``name``."""
        self._check_open()
        statuses = [str(Status.parse(status))] if status is not None else None
        await self.repository.flush()
        rows = await self.repository.job_rows(statuses=statuses)
        found = []
        for row in rows:
            if name is not None and row.name != name:
                continue
            found.append(self._jobs.get(row.id) or await self._load(row))
        return found

    async def summary(self, status: str | Status | None = None,
                      name: str | None = None) -> list[dict[str, Any]]:
        """One dict per master (the keys of :data:`SUMMARY_COLUMNS`), optionally only those in
        ``status`` or with ``name``, read without loading any job: fast on a repository of any
        size."""
        self._check_open()
        wanted = str(Status.parse(status)) if status is not None else None
        await self.repository.flush()
        rows = await self.repository.summary_rows()
        result = []
        for row in rows:
            entry = dict(zip(SUMMARY_COLUMNS, row, strict=True))
            live = self._jobs.get(row[0])
            if live is not None:
                entry["status"] = str(live._status)
            if (wanted is not None and entry["status"] != wanted) or (
                    name is not None and entry["name"] != name):
                continue
            entry["subjobs"] = entry["subjobs"] or 0
            result.append(entry)
        return result

    async def kill(self, job: Job) -> None:
        """Kill a job (every active subjob) or one subjob. Raises JobStateError if none is active."""
        self._check_open()
        master, indices = self._targets(job)
        by_backend: dict[str, list[Handle]] = {}
        count = 0
        for index in indices:
            status = self._status_of(master, index)
            if status in (Status.SUBMITTING, Status.NEW, Status.HELD):
                self._set_status(master, index, Status.KILLED, reason="killed before submission")
                count += 1
                continue
            if status not in _ON_BACKEND:
                continue
            key = _key(master, index)
            for name, active in self._active.items():
                entry = active.get(key)
                if entry is not None:
                    by_backend.setdefault(name, []).append(entry.handle)
                    count += 1
        if not count:
            raise JobStateError(f"job {job.fqid} is {job.status}: there is nothing to kill")
        for name, handles in by_backend.items():
            await self._drivers[name].kill(handles)
            if (cadence := self._cadences.get(name)) is not None:
                cadence.soon()
        log.info("kill requested", job_id=_jid(master), count=count)

    async def resubmit(self, job: Job, *, statuses: Sequence[str | Status] = ("failed",)) -> Job:
        """Submit again the subjobs in ``statuses`` (failed ones by default), or a final unsplit
        job or subjob. Raises JobStateError when nothing qualifies."""
        self._check_open()
        master, indices = self._targets(job)
        wanted = {Status.parse(s) for s in statuses}
        if job._master is not None or master._table is None:
            wanted = set(FINAL - {Status.REMOVED})
        chosen = [i for i in indices if self._status_of(master, i) in wanted]
        if not chosen:
            names = ", ".join(sorted(str(s) for s in wanted))
            raise JobStateError(f"job {job.fqid} has nothing in {names} to resubmit")
        driver = await self._driver(master.backend.plugin_name)
        await driver.forget([Handle(_key(master, i), "", output_dir(master._dir(), i)) for i in chosen])
        for index in chosen:
            self._reset_for_submission(master, index)
        master._freeze()
        await self.repository.flush()
        await self._submit_send.send((master, _indices(chosen)))
        log.info("job resubmitted", job_id=_jid(master), count=len(chosen))
        return job

    async def remove(self, job: Job) -> None:
        """Kill the job if active, then delete it from the repository and its workspace."""
        self._check_open()
        if job._master is not None:
            raise JobStateError(f"subjob {job.fqid} cannot be removed on its own; remove job {_jid(job)}")
        if job._id is None:
            job._status = Status.REMOVED
            return
        try:
            await self.kill(job)
        except JobStateError:
            pass
        for name, active in self._active.items():
            keys = [k for k, e in active.items() if e.job is job]
            for key in keys:
                del active[key]
            self._drivers[name].untrack(keys)
        await self.repository.delete_job(_jid(job))
        await anyio.to_thread.run_sync(shutil.rmtree, job._dir(), True)
        old = job._status
        job._status = Status.REMOVED
        if job.application.is_prepared is not None:
            self.shareref.refresh_soon(_holder(job), functools.partial(self._stored_sharedir, _jid(job)))
            await self.shareref.flush()
        self._jobs.pop(_jid(job), None)
        self._hub.publish(JobEvent(job.fqid, _jid(job), None, old, Status.REMOVED, time.time()))
        prefix = f"{job.fqid}."
        for key in [k for k in self._done if k == job.fqid or k.startswith(prefix)]:
            self._wake(key)
        log.info("job removed", job_id=_jid(job))

    async def force_status(self, job: Job, status: str | Status) -> None:
        """Force a job (all its subjobs) or a subjob into ``failed`` or ``completed``, as Ganga's
        ``force_status``; active ones are killed at their backend first."""
        self._check_open()
        target = Status.parse(status)
        if target not in (Status.FAILED, Status.COMPLETED):
            raise JobStateError(f"force_status accepts 'failed' or 'completed', not {target}")
        master, indices = self._targets(job)
        try:
            await self.kill(job)
        except JobStateError:
            pass
        for index in indices:
            key = _key(master, index)
            for name, active in self._active.items():
                if active.pop(key, None) is not None:
                    self._drivers[name].untrack([key])
            if self._status_of(master, index) is not target:
                self._set_status(master, index, target, reason="forced by the user", force=True)

    async def peek(self, job: Job, filename: str = "stdout") -> str:
        """The text of ``filename`` in the job's output (or kept working) directory; with ``""``
        the directory listing."""
        self._check_open()
        places = [job.outputdir, job.workdir]
        if filename:
            if Path(filename).is_absolute() or ".." in Path(filename).parts:
                raise JobSpecError("filename", "must name a file inside the job's output directory")
            for place in places:
                path = anyio.Path(place / filename)
                if await path.is_file():
                    return await path.read_text(errors="replace")
        names = []
        if await anyio.Path(job.outputdir).is_dir():
            names += [p.name async for p in anyio.Path(job.outputdir).iterdir()]
        if job.workdir.parent != job.outputdir and await anyio.Path(job.workdir).is_dir():
            names += [f"work/{p.name}" async for p in anyio.Path(job.workdir).iterdir()]
        if not filename:
            return "\n".join(sorted(names))
        raise FileNotFoundError(
            f"job {job.fqid} has no {filename!r} (yet); its files: "
            f"{', '.join(sorted(names)) or 'none yet'} (peek(job, '') lists what there is)"
        )

    # -- the stages -------------------------------------------------------------------

    async def _prepare_stage(
        self,
        inbox: MemoryObjectReceiveStream[tuple[Job, MemoryObjectSendStream[Any]]],
        *,
        task_status: TaskStatus[None],
    ) -> None:
        task_status.started()
        async with inbox, self._split_send:
            async for job, reply in inbox:
                with bound(job_id=_jid(job)):
                    prepared_here = job.application.is_prepared is None
                    try:
                        if prepared_here:
                            made = await _preparing.prepare(job.application, self.shared, self.shareref)
                            sharedir: Path | None = self.shared.root / made.name / made.subdir
                        else:
                            sharedir = await self._sharedir(job.application)
                        self._validate(job, sharedir)
                        if self._tg is not None:  # the backend gets ready while this is persisted
                            self._tg.start_soon(self._warm_up, job.backend.plugin_name)
                        job._status = Status.SUBMITTING
                        job._info.submit_counter += 1
                        job._times["submitting"] = time.time()
                        job._freeze()
                        self.repository.queue_job(
                            _jid(job), **self._row(job, Status.SUBMITTING, with_counter=True)
                        )
                        await self.repository.flush()
                    except BaseException as exc:
                        if (prepared_here and isinstance(exc, Exception)
                                and _preparing.unprepare(job.application)):
                            await self.shareref.flush()
                        await self._refuse(job, reply, exc)
                        if not isinstance(exc, Exception):
                            raise
                        continue
                    self._publish(job, None, Status.NEW, Status.SUBMITTING, None)
                    log.info("job accepted", name=job.name)
                await self._split_send.send((job, reply))

    async def _refuse(self, job: Job, reply: MemoryObjectSendStream[Any] | None,
                      exc: BaseException) -> None:
        """Put a job whose submission failed before reaching a backend back to ``new``."""
        if job._status is Status.SUBMITTING:
            job._status = Status.NEW
            job._info.submit_counter -= 1
            job._times.pop("submitting", None)
            self._thaw(job)
            self.repository.queue_job(
                _jid(job), status="new", submit_counter=job._info.submit_counter, times=job._times,
                n_subjobs=None,
            )
            self._publish(job, None, Status.SUBMITTING, Status.NEW, str(exc))
        if reply is not None:
            await _answer(reply, exc)

    def _validate(self, job: Job, sharedir: Path | None) -> None:
        inputs = []
        for i, path in enumerate(job.inputfiles):
            full = os.path.abspath(os.path.expanduser(path))
            if not os.path.exists(full):
                raise JobSpecError(f"inputfiles[{i}]", f"{full} does not exist; fix the path")
            inputs.append(full)
        job.inputfiles = inputs
        job.application.validate(inputs, sharedir)
        job.backend.validate(job)
        if job.splitter is not None:
            job.splitter.validate(job)
        _plugins.load("backend", job.backend.plugin_name)

    async def _split_stage(
        self,
        inbox: MemoryObjectReceiveStream[tuple[Job, MemoryObjectSendStream[Any] | None]],
        *,
        task_status: TaskStatus[None],
    ) -> None:
        task_status.started()
        async with inbox, self._submit_send:
            async for job, reply in inbox:
                with bound(job_id=_jid(job)):
                    await self._split(job, reply)

    async def _split(self, job: Job, reply: MemoryObjectSendStream[Any] | None) -> None:
        """Persist the subjobs, answer ``submit()`` (``reply``; None when resuming after a
        restart), then feed the subjobs to the submit stage."""
        if job.splitter is None:
            if reply is not None:
                await _answer(reply, None)
            await self._submit_send.send((job, None))
            return
        table = SubjobTable()
        splitter = job.splitter
        code = Status.SUBMITTING.code

        def rows() -> Iterator[tuple[int, int, str]]:
            dumps = json.JSONEncoder(separators=(",", ":")).encode
            for index, overrides in enumerate(splitter.split(job)):
                text = dumps(overrides)
                table.append(Status.SUBMITTING, text, submit_counter=1)
                yield index, code, text

        started = time.perf_counter()
        try:
            await self.repository.delete_subjobs(_jid(job))
            await self.repository.insert_subjobs(_jid(job), rows())
            if not len(table):
                raise JobSpecError("splitter", "made no subjobs; give it something to split")
        except Exception as exc:
            await self.repository.delete_subjobs(_jid(job))
            log.error("splitting failed", error=str(exc))
            error = exc if isinstance(exc, GangaAsyncError) else JobSpecError(
                "splitter", f"splitting failed: {exc!r}")
            if reply is None:
                self._set_status(job, None, Status.FAILED, reason=str(error))
            else:
                await self._refuse(job, reply, error)
            return
        job._table = table
        self.repository.queue_job(_jid(job), n_subjobs=len(table))
        await self.repository.flush()
        log.info("job split", subjobs=len(table), seconds=round(time.perf_counter() - started, 3))
        if reply is not None:
            await _answer(reply, None)
        batch = job.backend.submit_batch or self.config["Pipeline"]["submit_batch"]
        for start in range(0, len(table), batch):
            await self._submit_send.send((job, list(range(start, min(start + batch, len(table))))))

    async def _submit_stage(
        self, inbox: MemoryObjectReceiveStream[_Chunk], *, task_status: TaskStatus[None]
    ) -> None:
        task_status.started()
        async with inbox:
            async for job, indices in inbox:
                if job._status is Status.REMOVED:
                    continue
                with bound(job_id=_jid(job)):
                    try:
                        if await self._gate(job, indices):
                            continue
                        await self._submit_chunk(job, indices)
                    except Exception as exc:
                        log.error("submission failed", error=str(exc))
                        for index in indices if indices is not None else [None]:
                            if self._status_of(job, index) is Status.SUBMITTING:
                                self._set_status(job, index, Status.FAILED,
                                                 reason=f"submission failed: {exc}")

    async def _gate(self, job: Job, indices: list[int] | None) -> bool:
        """Hold the chunk when a credential it needs is short (True); the credential manager
        resumes it once they are all valid again."""
        needs = self.credentials.requirements(job)
        if not needs:
            return False
        reason = await self.credentials.check(needs)
        if reason is None:
            return False
        targets = [i for i in (indices if indices is not None else [None])
                   if self._status_of(job, i) is Status.SUBMITTING]
        for index in targets:
            self._set_status(job, index, Status.HELD, reason=reason)
        self.credentials.hold(_Held(self, job, targets, needs))
        log.warning("held for credentials", count=len(targets), reason=reason)
        return True

    async def _submit_chunk(self, job: Job, indices: list[int] | None) -> None:
        targets: list[int | None] = list(indices) if indices is not None else [None]
        units: list[SubmitUnit] = []
        sharedirs: dict[tuple[str, str], Path] = {}
        jobdir = job._dir()
        for index in targets:
            if self._status_of(job, index) is not Status.SUBMITTING:
                continue
            try:
                units.append(self._unit(job, index, jobdir, sharedirs))
            except GangaAsyncError as exc:
                self._set_status(job, index, Status.FAILED, reason=str(exc))
        if not units:
            return
        name = job.backend.plugin_name
        driver = await self._driver(name)
        handing_over = self._handing_over
        for unit in units:
            handing_over[unit.key] = None
        try:
            results = await driver.bulk_submit(units)
        except BaseException:
            for unit in units:
                handing_over.pop(unit.key, None)
            raise
        if (cadence := self._cadences.get(name)) is not None:
            cadence.soon()
        now = time.time()
        late_kills: list[Handle] = []
        early: dict[str, BackendStatus] = {}
        active = self._active[name]
        for unit, result in zip(units, results, strict=True):
            news = handing_over.pop(unit.key, None)
            if isinstance(result, BaseException):
                self._set_status(job, unit.index, Status.FAILED, reason=f"submission refused: {result}")
                continue
            handle = Handle(unit.key, result, unit.outputdir)
            if self._status_of(job, unit.index) is Status.KILLED:
                late_kills.append(handle)
                continue
            active[unit.key] = _Active(job, unit.index, handle)
            self._set_status(job, unit.index, Status.SUBMITTED, backend_id=result, t=now)
            if news is not None:
                early[unit.key] = news
        if early:
            await self._apply_news(active, early)
        if late_kills:
            await driver.kill(late_kills)

    def _unit(self, job: Job, index: int | None, jobdir: Path,
              sharedirs: dict[tuple[str, str], Path]) -> SubmitUnit:
        """The (sub)job resolved for its backend; ``jobdir`` is the job's directory and
        ``sharedirs`` caches ShareDir paths over a chunk, whose subjobs nearly always share
        their master's."""
        if index is None:
            fields: dict[str, Any] = {
                "name": job.name, "application": job.application, "backend": job.backend,
                "inputfiles": job.inputfiles, "outputfiles": job.outputfiles,
            }
        else:
            raw = _table(job).overrides[index]
            fields = apply_overrides(job, json.loads(raw) if raw else {})
        app = fields["application"]
        sharedir = app.is_prepared
        path = None
        if sharedir is not None:
            where = (sharedir.name, sharedir.subdir)
            path = sharedirs.get(where)
            if path is None:
                path = sharedirs[where] = self.shared.root / sharedir.name / sharedir.subdir
        command = app.command(fields["inputfiles"], path)
        return SubmitUnit(
            key=_key(job, index), job_id=_jid(job), index=index, name=fields["name"],
            backend=fields["backend"], command=command, inputfiles=list(fields["inputfiles"]),
            outputfiles=list(fields["outputfiles"]), workdir=work_dir(jobdir, index),
            outputdir=output_dir(jobdir, index),
        )

    async def _warm_up(self, name: str) -> None:
        """Start the backend's driver and its helpers while a job is persisted and split (see
        :meth:`BackendDriver.warm_up`); a failure here is met again at submission."""
        try:
            await (await self._driver(name)).warm_up()
        except Exception as exc:
            log.warning("backend not ready", backend=name, error=str(exc))

    async def _driver(self, name: str) -> BackendDriver:
        driver = self._drivers.get(name)
        if driver is not None:
            return driver
        async with self._driver_lock:
            driver = self._drivers.get(name)
            if driver is None:
                tg = self._tg
                if tg is None:
                    raise EngineClosedError("the engine is not running")
                cls: type[Backend] = _plugins.load("backend", name)
                driver = cls.make_driver(DriverContext(config=self.config, gangadir=self.gangadir))
                await tg.start(driver.run)
                self._active[name] = {}
                self._drivers[name] = driver
                if self.monitoring:
                    await tg.start(self._monitor, name, driver)
        return driver

    async def _monitor(
        self, name: str, driver: BackendDriver, *, task_status: TaskStatus[None]
    ) -> None:
        """Apply the driver's news as they come, and ask it for a sweep on the engine's schedule."""
        monitoring = self.config["Monitoring"]
        active = self._active[name]
        gate = _MonitorGate(self, name, active)
        cadence = self._cadences[name] = _Cadence(driver)
        task_status.started()
        while True:
            if await gate.paused():
                cadence.now()
                continue
            news = await cadence.news()
            if news is not None:
                cadence.soon()
                await self._apply_news(active, news)
                continue
            found = 0
            if active:
                try:
                    with anyio.fail_after(monitoring["command_timeout"]):
                        found = await driver.sweep()
                except (GangaAsyncError, TimeoutError, OSError) as exc:
                    log.warning("status sweep failed; retrying next sweep", backend=name, error=str(exc))
            cadence.swept(found)

    async def _apply_news(self, active: dict[str, _Active], news: Mapping[str, BackendStatus]) -> None:
        ended: list[_Ended] = []
        resubmit: dict[int, tuple[Job, list[int | None]]] = {}
        for key, status in news.items():
            entry = active.get(key)
            if entry is None:
                if key in self._handing_over:  # applied once its submission call returns
                    self._handing_over[key] = status
                continue
            job, index = entry.job, entry.index
            new = status.status
            if new is Status.NEW and entry.recovered:
                del active[key]
                current = self._status_of(job, index)
                if current not in _ON_BACKEND:
                    continue  # killed before it was submitted again
                if current is not Status.SUBMITTING:
                    self._set_status(job, index, Status.SUBMITTING, force=True)
                resubmit.setdefault(_jid(job), (job, []))[1].append(index)
                continue
            if new is Status.NEW:
                new, status = Status.FAILED, BackendStatus(
                    Status.FAILED, reason="the backend has no record of this job")
            else:
                self._catch_up(job, index, status)
            if new in (Status.SUBMITTED, Status.RUNNING, Status.UNKNOWN):
                self._set_status(job, index, new, backend_id=status.native_id, t=status.started)
                continue
            del active[key]
            if status.native_id is not None:
                self._set_status(job, index, self._status_of(job, index), backend_id=status.native_id)
            if new is Status.COMPLETED:
                self._set_status(job, index, Status.COMPLETING, t=status.started)
            ended.append((job, index, status))
        if ended:
            await self._finalise_send.send(ended)
        for job, indices in resubmit.values():
            log.info("resubmitting what never started", job_id=_jid(job), count=len(indices))
            await self._submit_send.send((job, _indices(indices)))

    def _catch_up(self, job: Job, index: int | None, status: BackendStatus) -> None:
        """Walk the states a (sub)job went through unseen, so the transition table accepts the
        news: a backend reporting on it has it (an engine that died before writing
        ``submitted`` left it ``submitting``), and one reporting a start has run it (a short
        process starts and ends between two updates)."""
        if self._status_of(job, index) is Status.SUBMITTING:
            self._set_status(job, index, Status.SUBMITTED, backend_id=status.native_id)
        if (status.started is not None and status.status not in (Status.SUBMITTED, Status.RUNNING)
                and self._status_of(job, index) is Status.SUBMITTED):
            self._set_status(job, index, Status.RUNNING, t=status.started)

    async def _finalise_stage(
        self, inbox: MemoryObjectReceiveStream[list[_Ended]], *, task_status: TaskStatus[None]
    ) -> None:
        """Take the (sub)jobs a backend reported ended, all of one piece of news at once."""
        task_status.started()
        async with inbox:
            async for ended in inbox:
                for job, index, status in ended:
                    if job._status is Status.REMOVED:
                        continue
                    self._set_status(job, index, status.status, exitcode=status.exitcode,
                                     reason=status.reason, t=status.ended)

    # -- state ------------------------------------------------------------------------

    def _status_of(self, job: Job, index: int | None) -> Status:
        if index is None:
            return job._status
        return _table(job).get_status(index)

    def _set_status(
        self,
        job: Job,
        index: int | None,
        status: Status,
        *,
        exitcode: int | None = None,
        reason: str | None = None,
        backend_id: str | None = None,
        t: float | None = None,
        force: bool = False,
    ) -> None:
        """The one place a status changes: check, record, persist (queued), publish."""
        old = self._status_of(job, index)
        if not force and not allowed(old, status):
            log.debug("ignored transition", fqid=_key(job, index), old=str(old), new=str(status))
            return
        now = time.time()
        t = t or now
        if index is None:
            job._status = status
            if old is not status:
                job._times[str(status)] = t
            if backend_id is not None:
                job._backend_id = backend_id
            if exitcode is not None:
                job._exitcode = exitcode
            if reason is not None or status in FINAL:
                job._reason = reason
            self.repository.queue_job(
                _jid(job), status=str(status), times=job._times, backend_id=job._backend_id,
                exitcode=job._exitcode, reason=job._reason,
            )
        else:
            table = _table(job)
            table.set_status(index, status)
            if backend_id is not None:
                table.backend_id[index] = backend_id
            if exitcode is not None:
                table.exitcode[index] = exitcode
            if reason is not None:
                table.reason[index] = reason
            elif status in FINAL and status is not Status.FAILED:
                table.reason.pop(index, None)
            if old is not status:
                if status is Status.SUBMITTED:
                    table.t_submitted[index] = t
                elif status is Status.RUNNING:
                    table.t_running[index] = t
                elif status in FINAL:
                    table.t_final[index] = t
            self._queue_subjob(job, index)
        if old is not status:
            self._publish(job, index, old, status, reason)
        if index is not None:
            self._derive_master(job, now)
        if status in FINAL and self._done:
            self._wake(_key(job, index))
            if index is not None and self._is_final(job):
                self._wake(_key(job, None))

    def _queue_subjob(self, job: Job, index: int) -> None:
        """Queue the repository write of subjob ``index`` as the table holds it now."""
        table = _table(job)
        self.repository.queue_subjob(_jid(job), index, (
            table.status[index], table.backend_id[index], table.exitcode[index],
            table.reason.get(index), table.submit_counter[index], table.t_submitted[index],
            table.t_running[index], table.t_final[index],
        ))

    def _derive_master(self, job: Job, now: float) -> None:
        """Bring a master's status in line with its subjobs' counts (Ganga's priority)."""
        master_status = derive_master_status(_table(job).counts)
        if master_status is not job._status:
            previous = job._status
            job._status = master_status
            job._times[str(master_status)] = now
            self.repository.queue_job(_jid(job), status=str(master_status), times=job._times)
            self._publish(job, None, previous, master_status, None)

    def _wake(self, key: str) -> None:
        """Wake whoever waits for the (sub)job ``key``."""
        event = self._done.pop(key, None)
        if event is not None:
            event.set()

    def _publish(self, job: Job, index: int | None, old: Status, new: Status, reason: str | None) -> None:
        if self._hub.subscribers:
            self._hub.publish(JobEvent(_key(job, index), _jid(job), index, old, new, time.time(), reason))
        if index is None:
            log.info("job status", job_id=_jid(job), old=str(old), new=str(new))

    def _is_final(self, job: Job) -> bool:
        if job._master is not None:
            return job.status in FINAL
        if job._table is not None and len(job._table):
            return _table(job).all_final() and job._status in FINAL
        return job._status in FINAL

    def _reset_for_submission(self, job: Job, index: int | None) -> None:
        if index is None:
            job._status = Status.SUBMITTING
            job._times["submitting"] = time.time()
            job._info.submit_counter += 1
            job._exitcode = None
            job._reason = None
            self.repository.queue_job(
                _jid(job), status="submitting", times=job._times, exitcode=None, reason=None,
                submit_counter=job._info.submit_counter,
            )
            return
        table = _table(job)
        old = table.set_status(index, Status.SUBMITTING)
        table.submit_counter[index] += 1
        table.exitcode[index] = None
        table.reason.pop(index, None)
        table.t_submitted[index] = table.t_running[index] = table.t_final[index] = 0.0
        self._queue_subjob(job, index)
        self._publish(job, index, old, Status.SUBMITTING, None)
        self._derive_master(job, time.time())

    def _targets(self, job: Job) -> tuple[Job, list[int | None]]:
        if job._master is not None:
            return job._master, [job._index]
        if job._id is None:
            raise JobStateError("the job was never added to an engine")
        if job._table is not None and len(job._table):
            return job, list(range(len(job._table)))
        return job, [None]

    # -- persistence ------------------------------------------------------------------

    def _row(self, job: Job, status: Status, *, with_counter: bool = False) -> dict[str, Any]:
        row: dict[str, Any] = {
            "name": job.name, "comment": job.comment, "status": str(status),
            "application": job.application.plugin_name, "backend": job.backend.plugin_name,
            "spec": job.spec(), "times": job._times,
        }
        if with_counter:
            row["submit_counter"] = job._info.submit_counter
        return row

    def _bind(self, job: Job, job_id: int) -> None:
        job._id = job_id
        job._workspace = self.workspace
        job._engine = self
        self._jobs[job_id] = job

    def _thaw(self, job: Job) -> None:
        for component in (job.application, job.backend, job.splitter, *job.credentials):
            if component is not None:
                component._thaw()

    async def _sharedir(self, app: Application) -> Path | None:
        """The path of a prepared application's ShareDir, checked to be one of this shared
        area that exists; None for an unprepared application."""
        sharedir = app.is_prepared
        if sharedir is None:
            return None
        path = self.shared.path(sharedir.name)
        if not await anyio.Path(path).is_dir():
            raise JobSpecError(
                "application.is_prepared",
                f"ShareDir {sharedir.name} does not exist in {self.shared.root}; unprepare the "
                "application (app.unprepare()) and prepare it again",
            )
        return path / sharedir.subdir

    def _prepared_changed(self, job: Job) -> None:
        """A stored job's application was prepared or unprepared (called from any thread):
        store its description and have the ShareRef actor re-read the job's reference."""
        if self._loop is None or job._id is None:
            return
        if threading.get_ident() != self._loop_thread:
            try:
                self._loop.call_soon_threadsafe(self._prepared_changed, job)
            except RuntimeError:
                pass
            return
        if self._tg is None:
            return
        if self._jobs.get(_jid(job)) is not job or job._status is Status.REMOVED:
            return
        self.repository.queue_job(_jid(job), spec=job.spec())
        self.shareref.refresh_soon(_holder(job), functools.partial(self._stored_sharedir, _jid(job)))

    def _stored_sharedir(self, job_id: int) -> str | None:
        """The ShareDir stored job ``job_id`` references now (none once removed)."""
        job = self._jobs.get(job_id)
        if job is None or job._status is Status.REMOVED:
            return None
        sharedir = job.application.is_prepared
        return None if sharedir is None else sharedir.name

    def _on_application(self, job: Job, previous: Application | None) -> None:
        """A stored new job got another application object (called from any thread)."""
        if self._loop is None or job._id is None:
            return
        if threading.get_ident() != self._loop_thread:
            try:
                self._loop.call_soon_threadsafe(self._on_application, job, previous)
            except RuntimeError:
                pass
            return
        if previous is not None:
            _preparing.detach(previous, _holder(job))
        _preparing.attach(job.application, _holder(job),
                          functools.partial(self._prepared_changed, job), self.shareref)

    async def _prepared_owners(self) -> list[tuple[str, str]]:
        await self.repository.flush()
        return await self.repository.prepared_owners()

    async def _unprepare_owners(self, holders: Sequence[str]) -> None:
        """Unprepare the applications of stored jobs and box entries (``job:3``, ``box:x``),
        whatever their status: their ShareDir is gone."""
        for holder in holders:
            kind, ident = holder_label(holder)
            if kind == "box":
                await self.box._unprepare(ident)
                continue
            job = self._jobs.get(int(ident))
            if job is None:
                rows = await self.repository.job_rows(ids=[int(ident)])
                if not rows:
                    continue
                job = await self._load(rows[0])
            _preparing.unprepare(job.application)
        await self.repository.flush()
        await self.shareref.flush()

    def _on_comment(self, job: Job) -> None:
        """Persist a comment changed on a bound job, from any thread."""
        if self._loop is None or self._tg is None or job._id is None:
            return
        if threading.get_ident() == self._loop_thread:
            self.repository.queue_job(_jid(job), comment=job.comment)
        else:
            self._loop.call_soon_threadsafe(self._on_comment, job)

    async def _load(self, row: JobRow) -> Job:
        job = Job.from_spec(row.spec, name=row.name, comment=row.comment)
        job._status = Status.parse(row.status)
        job._times = dict(row.times)
        job._info = JobInfo(submit_counter=row.submit_counter)
        job._backend_id, job._exitcode, job._reason = row.backend_id, row.exitcode, row.reason
        if row.n_subjobs:
            table = SubjobTable()
            for (_, code, overrides, backend_id, exitcode, reason, counter, t_sub, t_run,
                 t_fin) in await self.repository.subjob_rows(row.id):
                table.append(Status.from_code(code), overrides, counter, backend_id, exitcode,
                             reason, t_sub, t_run, t_fin)
            job._table = table
        if job._status is not Status.NEW:
            job._freeze()
        self._bind(job, row.id)
        _preparing.attach(job.application, _holder(job),
                          functools.partial(self._prepared_changed, job), self.shareref,
                          announce=False)
        return job

    async def _recover(self) -> None:
        """Resume what an earlier engine left: finish submissions, monitor active jobs again.

        An engine with ``monitoring=False`` resumes nothing: it must not submit to a backend,
        nor load every active job (seconds for a master of 100,000 subjobs) to leave it alone.
        """
        if not self.monitoring:
            return
        names = [str(s) for s in (*_ON_BACKEND, Status.HELD)]
        rows = await self.repository.job_rows(statuses=names)
        if not rows:
            return
        pending: dict[str, list[tuple[Job, int | None]]] = {}
        for row in rows:
            try:
                job = self._jobs.get(row.id) or await self._load(row)
            except GangaAsyncError as exc:  # a plugin it needs is no longer installed
                log.error("an active job cannot be loaded and stays as it is", job_id=row.id,
                          error=str(exc))
                continue
            if job.splitter is not None and row.n_subjobs is None:
                log.info("resuming an interrupted split", job_id=row.id)
                await self._split_send.send((job, None))
                continue
            held = []
            for index in self._targets(job)[1]:
                status = self._status_of(job, index)
                if status is Status.HELD:
                    held.append(index)
                elif status in _ON_BACKEND:
                    pending.setdefault(job.backend.plugin_name, []).append((job, index))
            if held:
                log.info("held jobs wait for their credentials again", job_id=row.id, count=len(held))
                self.credentials.hold(_Held(self, job, held, self.credentials.requirements(job)))
        for name, items in pending.items():
            entries = {}
            for job, index in items:
                backend_id = job._backend_id if index is None else _table(job).backend_id[index]
                key = _key(job, index)
                handle = Handle(key, backend_id or "", output_dir(job._dir(), index))
                entries[key] = _Active(job, index, handle, recovered=True)
            if not await self._resume(name, entries) and self._tg is not None:
                self._tg.start_soon(self._resume_later, name, entries)

    async def _resume(self, name: str, entries: dict[str, _Active]) -> bool:
        """Take over the (sub)jobs an earlier engine left active on backend ``name``: monitor
        them again, the backend tracking them and sweeping them at once; the news say which it
        has, and those it never got (``NEW``) are submitted again. False when the backend could
        not answer; they keep their status meanwhile."""
        try:
            driver = await self._driver(name)
            active = self._active[name]
            handles = []
            for key, entry in entries.items():
                current = self._status_of(entry.job, entry.index)
                if entry.job._status is Status.REMOVED or current not in _ON_BACKEND:
                    continue  # removed, killed or forced while the backend could not answer
                active[key] = entry
                handles.append(entry.handle)
            with anyio.fail_after(self.config["Monitoring"]["command_timeout"]):
                await driver.track(handles)
                await driver.sweep()
        except PluginError as exc:
            log.error("jobs of a backend that cannot be loaded stay as they are", backend=name,
                      count=len(entries), error=str(exc))
            return True
        except (GangaAsyncError, TimeoutError, OSError) as exc:
            log.warning("cannot ask the backend about the jobs an earlier engine left; asking "
                        "again every poll interval", backend=name, count=len(entries), error=str(exc))
            return False
        log.info("monitoring resumed", backend=name, active=len(active))
        return True

    async def _resume_later(self, name: str, entries: dict[str, _Active]) -> None:
        """Retry :meth:`_resume` every poll interval until the backend answers, for the
        (sub)jobs still waiting for it (not those its news ended or sent to submission)."""
        while True:
            await anyio.sleep(self.config["Monitoring"]["poll_interval"])
            active = self._active.get(name, {})
            entries = {k: e for k, e in entries.items() if active.get(k) is e}
            if not entries or await self._resume(name, entries):
                return


async def _answer(reply: MemoryObjectSendStream[Any], outcome: BaseException | None) -> None:
    """Answer a ``submit()``; one that was cancelled meanwhile no longer listens, and its job
    goes on all the same."""
    with reply:
        try:
            await reply.send(outcome)
        except anyio.BrokenResourceError:
            pass


class _Held:
    """(Sub)jobs of one master held at the credential gate; the manager resumes them."""

    def __init__(self, engine: Engine, job: Job, targets: list[int | None],
                 needs: Sequence[Requirement]) -> None:
        self.engine = engine
        self.job = job
        self.targets = targets
        self.needs = needs

    def _still_held(self) -> list[int | None]:
        return [i for i in self.targets if self.engine._status_of(self.job, i) is Status.HELD]

    async def resume(self) -> None:
        """Back to ``submitting`` and into the submit stage (those not killed meanwhile)."""
        engine, job = self.engine, self.job
        chosen = self._still_held()
        if not chosen or job._status is Status.REMOVED:
            return
        for index in chosen:
            if index is None:
                job._reason = None
            else:
                _table(job).reason.pop(index, None)
            engine._set_status(job, index, Status.SUBMITTING)
        log.info("credentials valid again: resuming", job_id=_jid(job), count=len(chosen))
        try:
            await engine._submit_send.send((job, _indices(chosen)))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the engine is closing; the next one submits them (they are `submitting`)

    def explain(self, reason: str) -> None:
        """Record a new reason on the (sub)jobs still held."""
        for index in self._still_held():
            current = self.job._reason if index is None else _table(self.job).reason.get(index)
            if current != reason:
                self.engine._set_status(self.job, index, Status.HELD, reason=reason)


class _MonitorGate:
    """Pauses a backend's monitoring while a credential its active jobs need has expired."""

    def __init__(self, engine: Engine, name: str, active: dict[str, _Active]) -> None:
        self.engine = engine
        self.name = name
        self.active = active
        self._size = -1
        self._collected = 0.0
        self._needs: list[Requirement] = []
        self._reason: str | None = None

    def _collect(self) -> list[Requirement]:
        """The credentials the active jobs need, worked out again when the set of active jobs
        changed, at most once per ``check_interval`` (it walks every active job)."""
        if not self.engine.credentials.in_use:
            return []
        now = time.monotonic()
        interval = self.engine.config["Credentials"]["check_interval"]
        if len(self.active) != self._size and (self._size < 0 or now - self._collected >= interval):
            self._size = len(self.active)
            self._collected = now
            masters: dict[int, Job] = {}
            last = None
            for entry in self.active.values():
                if entry.job is not last:
                    last = entry.job
                    masters[id(last)] = last
            needs: dict[str, Requirement] = {}
            for job in masters.values():
                for need in self.engine.credentials.requirements(job):
                    needs.setdefault(need.credential.key(), need)
            self._needs = list(needs.values())
        return self._needs

    async def paused(self) -> bool:
        """False when monitoring may go on; else wait for the credential manager's next look
        and return True (the caller asks again)."""
        needs = self._collect()
        if not needs:
            return False
        reason = await self.engine.credentials.expired(needs)
        if reason is None:
            if self._reason is not None:
                log.info("monitoring resumed", backend=self.name)
                self._reason = None
            return False
        if self._reason != reason:
            log.warning("monitoring paused: jobs keep their last status", backend=self.name,
                        reason=reason)
            self._reason = reason
        await self.engine.credentials.next_sweep()
        return True


class _Cadence:
    """When a backend's monitor sweeps next: the driver's shortest interval after news, a
    submission or a kill; half as long again after each sweep that found nothing, up to its
    longest (:meth:`BackendDriver.poll_bounds`)."""

    def __init__(self, driver: BackendDriver) -> None:
        self.driver = driver
        self.interval = driver.poll_bounds()[0]
        self.due = anyio.current_time() + self.interval
        self._waiting: anyio.CancelScope | None = None

    async def news(self) -> Mapping[str, BackendStatus] | None:
        """The driver's next news, or None once a sweep is due."""
        with anyio.CancelScope(deadline=self.due) as scope:
            self._waiting = scope
            try:
                return await self.driver.news()
            finally:
                self._waiting = None
        return None

    def _set(self, due: float) -> None:
        self.due = due
        if self._waiting is not None:
            self._waiting.deadline = due

    def soon(self) -> None:
        """Back to the shortest interval, counted from now unless a sweep is due sooner."""
        self.interval = self.driver.poll_bounds()[0]
        self._set(min(self.due, anyio.current_time() + self.interval))

    def now(self) -> None:
        """Sweep at once (monitoring resumed after a pause)."""
        self._set(anyio.current_time())

    def swept(self, found: int) -> None:
        """A sweep ended, with news of ``found`` (sub)jobs."""
        shortest, longest = self.driver.poll_bounds()
        self.interval = shortest if found else min(self.interval * 1.5, longest)
        self._set(anyio.current_time() + self.interval)


def _indices(chosen: list[int | None]) -> list[int] | None:
    """The chunk form of a selection: ``None`` for an unsplit job, else subjob indices."""
    return None if chosen == [None] else [i for i in chosen if i is not None]


def _jid(job: Job) -> int:
    if job._id is None:
        raise JobStateError("the job was never added to an engine")
    return job._id


def _holder(job: Job) -> str:
    """The ShareRef holder name of a stored job."""
    return f"job:{_jid(job)}"


def _table(job: Job) -> SubjobTable:
    if job._table is None:
        raise JobStateError(f"job {job.fqid} has no subjobs")
    return job._table


def _key(job: Job, index: int | None) -> str:
    return str(_jid(job)) if index is None else f"{_jid(job)}.{index}"


def _parse_fqid(value: int | str) -> tuple[int, int | None]:
    text = str(value)
    head, _, tail = text.partition(".")
    try:
        return int(head), (int(tail) if tail else None)
    except ValueError:
        raise JobNotFoundError(f"{value!r} is not a job id; use e.g. 3 or 3.17") from None

