"""What the stages share: the live jobs, the recorder of state changes, and the streams between them."""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from .._exceptions import JobNotFoundError, JobStateError
from .._log import get_logger, user_logger
from ..backends.base import BackendStatus
from ..config import Config
from ..credentials.manager import CredentialManager
from ..events import EventHub, JobEvent, RetryEvent
from ..model.job import Job
from ..model.machine import Changes, Moves, Transition, is_final
from ..model.record import JobRecord
from ..persistence.repository import Repository
from ..prepared.sharedir import SharedArea
from ..prepared.shareref import ShareRef
from ..states import FINAL

__all__ = ["engine_log", "Context", "Live", "LiveJobs", "Registry", "Recorder", "Chunk", "Ended",
           "indices_of"]

engine_log = log = get_logger("ganga_async.engine")
say = user_logger()
"""The engine's log, whichever stage writes to it: users follow one logger, ``ganga_async.engine``."""

Chunk = tuple["Live", list[int] | None]
"""A job and the subjob indices to submit (``None``: the job itself, unsplit)."""
Ended = tuple["Live", int | None, BackendStatus]
"""A (sub)job its backend is done with, and how it ended."""


class Live:
    """A stored job this engine holds: the user's object and the record the engine keeps."""

    __slots__ = ("job", "record", "token", "spec_writes", "__weakref__")

    def __init__(self, job: Job, record: JobRecord) -> None:
        self.job = job
        self.record = record
        self.token: str | None = None
        """The submission token its acceptance stores (``Engine.submit(token=...)``)."""
        self.spec_writes = 0
        """How many writes of its description began: one that took its time encoding (a
        large description) is dropped when another began meanwhile."""

    @property
    def id(self) -> int:
        job_id = self.record.id
        if job_id is None:
            raise JobStateError("the job was never added to an engine")
        return job_id


class LiveJobs:
    """The stored jobs in memory, by id: held for as long as the engine has work on them, then
    for as long as their user holds them.

    A job is *held* from the moment it is stored or loaded until its master is final (and no
    stage has pinned it); then it *rests*: it stays in memory only while something else holds
    its :class:`Live` (its Job object, through the observer the store binds it to, or a subjob
    of it), so that ``engine.get()`` and ``registry.find()`` keep returning the same object
    while the user has it, and an engine running for weeks keeps no finished job it is not
    asked about. A resting job found active again (resubmitted) is held again.
    """

    def __init__(self) -> None:
        self._held: dict[int, Live] = {}
        self._resting: weakref.WeakValueDictionary[int, Live] = weakref.WeakValueDictionary()
        self.keep: Callable[[Live], bool] | None = None
        """Which final jobs a stage still needs: they stay held until it calls :meth:`release` for
        them (the notify stage, for the events of jobs with notifiers it has not read yet)."""
        self.rested: Callable[[], None] | None = None
        """Called when a job starts to rest (the engine returns the memory it leaves free)."""

    def get(self, job_id: int | None) -> Live | None:
        live = self._held.get(job_id)  # type: ignore[arg-type]
        if live is None and job_id is not None and self._resting:
            live = self._resting.get(job_id)
        return live

    def __setitem__(self, job_id: int, live: Live) -> None:
        self._resting.pop(job_id, None)
        self._held[job_id] = live

    def pop(self, job_id: int, default: Live | None = None) -> Live | None:
        live = self._held.pop(job_id, None)
        resting = self._resting.pop(job_id, None)
        return live or resting or default

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._held or job_id in self._resting

    def __len__(self) -> int:
        return len(self._held) + len(self._resting)

    def __iter__(self) -> Iterator[int]:
        return iter([*self._held, *self._resting.keys()])

    def values(self) -> list[Live]:
        return [*self._held.values(), *self._resting.values()]

    @property
    def held(self) -> int:
        """How many jobs the engine holds whatever their user does (the rest are resting)."""
        return len(self._held)

    def rest(self, job_id: int) -> None:
        """The master ``job_id`` is final: keep it only while something else holds it, unless
        :attr:`keep` says a stage still needs it."""
        live = self._held.get(job_id)
        if live is None or (self.keep is not None and self.keep(live)):
            return
        self._to_rest(job_id, live)

    def release(self, job_id: int) -> None:
        """The stage that :attr:`keep` spoke for is done with job ``job_id``: it rests if its
        master is final (else it rests when it is)."""
        live = self._held.get(job_id)
        if live is not None and is_final(live.record):
            self._to_rest(job_id, live)

    def _to_rest(self, job_id: int, live: Live) -> None:
        del self._held[job_id]
        self._resting[job_id] = live
        if self.rested is not None:
            self.rested()

    def hold(self, job_id: int) -> None:
        """The master ``job_id`` is active again: hold it until it is final."""
        if self._resting:
            live = self._resting.pop(job_id, None)
            if live is not None:
                self._held[job_id] = live


class Registry:
    """The stored jobs in memory by id (see :class:`LiveJobs`), and the events of those waiting
    for (sub)jobs to end."""

    def __init__(self) -> None:
        self.jobs = LiveJobs()
        self.waiters: dict[str, anyio.Event] = {}

    def find(self, job: Job) -> tuple[Live, int | None]:
        """The live job behind ``job`` (a job of this engine or a view of one of its subjobs)
        and the subjob index (None for the job itself)."""
        master = job.master if job.master is not None else job
        job_id = master.id
        live = self.jobs.get(job_id) if job_id is not None else None
        if live is None or live.job is not master:
            if job_id is None:
                raise JobStateError("the job was never added to an engine")
            raise JobNotFoundError(f"job {job.fqid} is not one of this engine's jobs; use engine.get()")
        return live, (job.id if job.master is not None else None)

    def wake(self, key: str) -> None:
        """Wake whoever waits for the (sub)job ``key``."""
        event = self.waiters.pop(key, None)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        for event in self.waiters.values():
            event.set()
        self.waiters.clear()


class Recorder:
    """Carries out what the state machine decided: queue the repository writes of the rows it
    changed, publish each transition to subscribers and wake the waiters of what ended."""

    def __init__(self, repository: Repository, hub: EventHub, registry: Registry) -> None:
        self.repository = repository
        self.hub = hub
        self.registry = registry

    def commit(self, changes: Changes) -> None:
        repository = self.repository
        for record, index in dict.fromkeys(changes.rows):  # a row changed twice is written once
            job_id = record.id
            assert job_id is not None
            if index is None:
                table = record.table
                repository.queue_job(
                    job_id, status=str(record.status), times=record.times,
                    backend_id=record.backend_id, exitcode=record.exitcode, reason=record.reason,
                    submit_counter=record.submit_counter, retry_at=record.retry_at,
                    n_subjobs=len(table) if table is not None else None,
                )
            else:
                assert record.table is not None
                repository.queue_subjob(job_id, index, record.table.row(index))
        for moves in changes.moved:
            assert moves.record.id is not None and moves.record.table is not None
            repository.queue_moved(moves.record.id, moves.record.table, moves.indices)
        for record, index, attempt in changes.attempts:
            assert record.id is not None
            repository.queue_attempt(record.id, index, tuple(attempt))  # type: ignore[arg-type]
        if changes.retries and self.hub.subscribers:
            self._retrying(changes)
        if not changes.transitions:
            return
        publish = self.hub.wants(JobEvent, subjobs=False)
        publish_subjobs = publish and self.hub.wants(JobEvent, subjobs=True)
        waiting = bool(self.registry.waiters)
        jobs = self.registry.jobs
        now = time.time()
        for change in changes.transitions:
            if isinstance(change, Moves):
                if publish_subjobs:
                    self._publish_moves(change, now)
                continue  # subjobs, none of them final: nothing else to do
            record, index = change.record, change.index
            assert record.id is not None
            if publish and (index is None or publish_subjobs):
                self.hub.publish(JobEvent(record.key(index), record.id, index, change.old,
                                          change.new, now, change.reason))
            if index is None:
                say.info(f'job {record.id} status changed to "{change.new}"', job_id=record.id,
                         old=str(change.old), new=str(change.new))
                if change.new not in FINAL:
                    jobs.hold(record.id)
                elif is_final(record):
                    jobs.rest(record.id)
            elif change.new in FINAL and record.status in FINAL and is_final(record):
                jobs.rest(record.id)  # the last subjob of a master already final (killed)
            if waiting and change.new in FINAL:
                self.registry.wake(record.key(index))
                if index is not None and is_final(record):
                    self.registry.wake(record.key(None))

    def _publish_moves(self, moves: Moves, now: float) -> None:
        record, old, new, publish = moves.record, moves.old, moves.new, self.hub.publish
        job_id = record.id
        assert job_id is not None
        prefix = f"{job_id}."
        for index in moves.indices:
            publish(JobEvent(f"{prefix}{index}", job_id, index, old, new, now, None))

    def _retrying(self, changes: Changes) -> None:
        """Publish a :class:`RetryEvent` for each retry decided: the attempt to come (the
        (sub)job's submission count, already counted) and the wait before it."""
        now = time.time()
        reasons = {(t.record.id, t.index): t.reason for t in changes.transitions
                   if isinstance(t, Transition)}
        for record, index, due in changes.retries:
            assert record.id is not None
            table = record.table
            attempt = (record.submit_counter if index is None or table is None
                       else table.submit_counter[index])
            self.hub.publish(RetryEvent(record.key(index), record.id, index, attempt,
                                        max(0.0, due - now), now, reasons.get((record.id, index))))


@dataclasses.dataclass
class Context:
    """What every stage may use. The streams are set when the engine starts its stages."""

    config: Config
    gangadir: Path
    workspace: Path
    monitoring: bool
    repository: Repository
    shared: SharedArea
    shareref: ShareRef
    credentials: CredentialManager
    hub: EventHub
    registry: Registry
    recorder: Recorder
    tg: TaskGroup | None = None
    to_split: MemoryObjectSendStream[tuple[Live, MemoryObjectSendStream[Any] | None]] | None = None
    to_submit: MemoryObjectSendStream[Chunk] | None = None
    to_finalise: MemoryObjectSendStream[list[Ended]] | None = None
    postprocess: Callable[[list[JobRecord]], None] | None = None
    """Runs the postprocessors of the masters the state machine holds for them."""
    notify: Callable[[Job], None] | None = None
    """Makes the job's notifiers hear its transitions from now on."""
    retry: Callable[[list[tuple[JobRecord, int | None, float]]], None] | None = None
    """Submits again, once due, what the retry policy sent back to ``submitting``."""

    def submit_inbox(self) -> MemoryObjectSendStream[Chunk]:
        """The submit stage's inlet (the engine is running)."""
        if self.to_submit is None:
            raise JobStateError("the engine is not running")
        return self.to_submit

    def split_inbox(self) -> MemoryObjectSendStream[tuple[Live, MemoryObjectSendStream[Any] | None]]:
        """The split stage's inlet (the engine is running)."""
        if self.to_split is None:
            raise JobStateError("the engine is not running")
        return self.to_split

    def commit(self, changes: Changes) -> None:
        """Carry out the state machine's decisions (see :class:`Recorder`)."""
        if changes:
            self.recorder.commit(changes)
        if changes.postprocess and self.postprocess is not None:
            self.postprocess(changes.postprocess)
        if changes.retries and self.retry is not None:
            self.retry(changes.retries)


def indices_of(chosen: list[int | None]) -> list[int] | None:
    """The chunk form of a selection: ``None`` for an unsplit job, else subjob indices."""
    return None if chosen == [None] else [i for i in chosen if i is not None]
