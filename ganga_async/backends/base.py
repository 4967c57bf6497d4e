"""The backend plugin contract.

A backend comes in two parts:

- :class:`Backend` is the settings object a user puts on a job (``Local(max_concurrent=4)``):
  a typed dataclass, serialised with the job and frozen once the job is submitted;
- :class:`BackendDriver` is the runtime: the engine creates one driver per backend class and
  keeps it for its whole life. All jobs of that backend go through it, so a driver can submit
  many subjobs at once (job arrays) and ask for the status of every active job in one query.

The engine does the bookkeeping once for all backends: it persists the intent before calling
:meth:`BackendDriver.bulk_submit`, records the native ids it returns, calls
:meth:`BackendDriver.sweep` on one schedule for every backend, applies the news that
:meth:`BackendDriver.news` brings, and finalises jobs. Drivers only talk to their system;
:class:`TrackingDriver` gives them the watched (sub)jobs and the news stream they all need.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
import signal
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from .._component import Component, JobView
from .._exceptions import BackendError
from ..applications.base import Command
from ..states import Status

if TYPE_CHECKING:
    from ..config import Config
    from ..credentials.base import Credential

__all__ = [
    "Backend", "BackendDriver", "BackendStatus", "DriverContext", "Handle", "SubmitUnit", "Tracked",
    "TrackingDriver",
]


@dataclasses.dataclass(frozen=True, slots=True)
class SubmitUnit:
    """One (sub)job, resolved and ready for a backend.

    ``key`` is the fqid (``"3.17"``), unique in the gangadir. ``backend`` is the subjob's own
    backend settings (a splitter may change them). ``workdir`` is where it runs and
    ``outputdir`` where stdout, stderr, the status file and the ``outputfiles`` matches go.
    """

    key: str
    job_id: int
    index: int | None
    name: str
    backend: Backend
    command: Command
    inputfiles: list[str]
    outputfiles: list[str]
    workdir: Path
    outputdir: Path


@dataclasses.dataclass(frozen=True, slots=True)
class Handle:
    """What the engine keeps of a submitted (sub)job to ask its backend about it."""

    key: str
    native_id: str
    outputdir: Path


@dataclasses.dataclass(frozen=True, slots=True)
class BackendStatus:
    """A backend's view of one (sub)job.

    ``status`` is one of ``SUBMITTED`` (queued), ``RUNNING``, ``COMPLETED`` (ended with exit
    code 0), ``FAILED``, ``KILLED``, ``UNKNOWN``, or ``NEW``: the backend never received it
    (so the engine may submit it again without running it twice).
    """

    status: Status
    exitcode: int | None = None
    reason: str | None = None
    started: float | None = None
    ended: float | None = None
    native_id: str | None = None
    """Set when the backend's id for the job changed (a local pid once the process starts)."""


def final_status(code: int | None, killed: bool, error: str | None, *, started: float | None = None,
                 ended: float | None = None, native_id: str | None = None) -> BackendStatus:
    """The status of a process that ended with exit code ``code`` (negative: the signal that
    ended it; None: not known), as the process that watched it recorded it: ``killed`` when it
    was killed on request, ``error`` when it could not run or its outputs could not be saved.
    ``native_id``: the process's id, when its start was not reported on its own."""
    if code == 0 and not killed and not error:
        return BackendStatus(Status.COMPLETED, exitcode=0, started=started, ended=ended,
                             native_id=native_id)
    if killed:
        return BackendStatus(Status.KILLED, exitcode=code, reason="killed", started=started,
                             ended=ended, native_id=native_id)
    if error:
        return BackendStatus(Status.FAILED, exitcode=code, reason=error, started=started,
                             ended=ended, native_id=native_id)
    if code is None:
        reason = "ended without an exit code"
    elif code < 0:
        try:
            reason = f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            reason = f"killed by signal {-code}"
    else:
        reason = f"exit code {code}"
    return BackendStatus(Status.FAILED, exitcode=code, reason=reason, started=started, ended=ended,
                         native_id=native_id)


@dataclasses.dataclass(frozen=True, slots=True)
class DriverContext:
    """What a driver gets from the engine."""

    config: Config
    gangadir: Path


class BackendDriver(abc.ABC):
    """The runtime of one backend inside one engine: what the engine asks of every backend.

    Lifecycle: the engine calls ``await task_group.start(driver.run)`` and later
    :meth:`aclose`. Every method may be called concurrently from several tasks.

    The verbs:

    - :meth:`bulk_submit` hands units over; every unit the backend accepts is *tracked* from
      then on, and :meth:`track` adds (sub)jobs an earlier engine submitted;
    - :meth:`news` is the one stream of status news, keyed by ``Handle.key``: what the backend
      pushes by itself (the Local runner's events, a scheduler's callbacks) and what
      :meth:`sweep` finds;
    - :meth:`sweep` is one bulk status query over everything tracked (one ``squeue`` for all,
      never one per job), whose news go into the stream. The engine calls it on its own
      schedule: every :meth:`poll_bounds` ``[0]`` seconds after news, a submission or a kill,
      growing by half while sweeps find nothing, up to ``[1]``; and not at all while a
      credential the backend's jobs need has expired;
    - :meth:`untrack` and :meth:`forget` end the tracking of (sub)jobs the engine no longer
      cares about; :meth:`kill` stops them, their final status following as news.

    A driver stops tracking a (sub)job once it reported a final status (or ``NEW``) for it.
    :class:`TrackingDriver` does that bookkeeping and the news stream for its subclasses.
    """

    def __init__(self, context: DriverContext) -> None:
        self._context = context

    @abc.abstractmethod
    async def run(self, *, task_status: TaskStatus[None]) -> None:
        """Run the driver's background work; call ``task_status.started()`` once ready."""

    async def warm_up(self) -> None:
        """Get ready for a submission that comes soon: the engine calls it in the background
        when ``submit()`` is called, while the job is stored, checked and split (and, for the
        Local backend, while an engine that monitors opens). A driver with
        helpers to start (the Local backend's runner) starts them here; the default does
        nothing. Errors are logged, and met again by :meth:`bulk_submit`."""

    @abc.abstractmethod
    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        """Submit many units at once; return, in order, each unit's native id or its error.

        A unit whose error is returned was not accepted by the backend; every other one is
        tracked from now on. Raise only when nothing was submitted.
        """

    async def submit(self, unit: SubmitUnit) -> str:
        """Submit one unit and return its native id."""
        (result,) = await self.bulk_submit([unit])
        if isinstance(result, BaseException):
            raise result
        return result

    @abc.abstractmethod
    async def track(self, handles: Sequence[Handle]) -> None:
        """Watch (sub)jobs an earlier engine submitted (recovery after a restart).

        A handle's ``native_id`` is empty when that engine died before recording it; the
        driver then looks the (sub)job up by what it wrote before submitting. Their news,
        including ``BackendStatus(Status.NEW)`` for one the backend never received (the
        engine submits it again), come through :meth:`news`. Handles already tracked are
        left as they are. Raise :class:`~ganga_async.BackendUnavailableError` when the
        backend cannot be asked now; the engine tries again later.
        """

    @abc.abstractmethod
    def untrack(self, keys: Iterable[str]) -> None:
        """Stop watching these (sub)jobs: the engine no longer cares (removed, forced)."""

    @abc.abstractmethod
    async def kill(self, handles: Sequence[Handle]) -> None:
        """Ask the backend to stop these (sub)jobs; their final status follows as news."""

    async def release(self, handles: Sequence[Handle]) -> None:
        """Let (sub)jobs the batch system holds (HTCondor's Held) go on; their news follow.
        The default refuses: a backend that never holds jobs has none to release."""
        raise BackendError(f"{type(self).__name__} never holds jobs, so it has none to release")

    async def forget(self, handles: Sequence[Handle]) -> None:
        """Stop tracking these (sub)jobs and drop what the backend kept of their earlier runs:
        the engine is about to submit them again, and a restarted engine must never take an
        old end for the new run's. The default only untracks them, for a backend that keeps
        no record of its own beside its native ids (those of the new run replace the old ones)."""
        self.untrack(handle.key for handle in handles)

    @abc.abstractmethod
    async def sweep(self) -> int:
        """One bulk status query over every (sub)job tracked; put what changed into the news
        stream and return for how many (sub)jobs. A failed query raises and changes nothing."""

    @abc.abstractmethod
    async def news(self) -> Mapping[str, BackendStatus]:
        """Wait for the next batch of news, keyed by ``Handle.key``: statuses the backend
        pushed or a :meth:`sweep` found since the last call."""

    def poll_bounds(self) -> tuple[float, float]:
        """The shortest and the longest seconds between two sweeps; by default ``[Monitoring]
        poll_interval`` for both. Read again before each sweep, so a change applies at once."""
        interval = float(self._context.config["Monitoring"]["poll_interval"])
        return interval, interval

    async def aclose(self) -> None:
        """Release the driver's resources. Jobs it submitted keep running."""


class Tracked:
    """A (sub)job a driver watches: its handle, the last status reported to the engine, and
    whether the engine asked to kill it (so that the end it meets is reported ``killed``)."""

    __slots__ = ("handle", "last", "killed")

    def __init__(self, handle: Handle, last: BackendStatus | None = None) -> None:
        self.handle = handle
        self.last = last
        self.killed = False


TrackedT = TypeVar("TrackedT", bound=Tracked)

_ACTIVE = frozenset({Status.SUBMITTED, Status.RUNNING, Status.UNKNOWN, Status.HELD})

PUBLISH_SLICE = 10_000
"""Statuses of a sweep's answer :meth:`TrackingDriver.publish_sweep` looks at between two
yields of the event loop."""


class TrackingDriver(BackendDriver, Generic[TrackedT]):
    """A driver with the bookkeeping every backend shares: the (sub)jobs it tracks and the
    stream of news.

    :attr:`tracked` maps each watched key to its :class:`Tracked` entry (a subclass of it for
    a driver's own fields). A driver hands what it learns to :meth:`publish`, which keeps
    only real news (a status other than the last one reported), stops tracking what ended,
    and wakes :meth:`news`. :meth:`untrack` and :meth:`forget` drop entries.
    """

    def __init__(self, context: DriverContext) -> None:
        super().__init__(context)
        self.tracked: dict[str, TrackedT] = {}
        self._news: dict[str, BackendStatus] = {}
        self._news_ready = anyio.Event()

    def publish(self, news: Mapping[str, BackendStatus]) -> int:
        """Put news into the stream and return how many there were. A tracked (sub)job's
        status equal to the last one reported is no news; a final one (or ``NEW``) ends its
        tracking. A key not tracked is passed on as it is (``NEW`` for one never received)."""
        return self._publish(news.items())

    async def publish_sweep(self, answer: Mapping[str, BackendStatus]) -> int:
        """:meth:`publish` the answer of a sweep, which may hold the status of 10^5 (sub)jobs:
        ``PUBLISH_SLICE`` at a time, the event loop free between slices (a few ms each).
        ``answer`` is the caller's own: nothing may change it meanwhile."""
        count = 0
        items = iter(answer.items())
        for start in range(0, len(answer), PUBLISH_SLICE):
            if start:
                await anyio.lowlevel.checkpoint()
            count += self._publish(itertools.islice(items, PUBLISH_SLICE))
        return count

    def _publish(self, news: Iterable[tuple[str, BackendStatus]]) -> int:
        count = 0
        pending = self._news
        tracked = self.tracked
        for key, status in news:
            entry = tracked.get(key)
            if entry is not None:
                last = entry.last
                # Equal statuses first (a sweep finds most as they were): the same object, or one
                # equal field by field (the status compared first, cheaply).
                if last is not None and (status is last or (status.status is last.status
                                                             and status == last)):
                    continue
                if status.status in _ACTIVE:
                    entry.last = status
                else:
                    del tracked[key]
            pending[key] = status
            count += 1
        if count:
            self._news_ready.set()
        return count

    async def news(self) -> Mapping[str, BackendStatus]:
        await self._news_ready.wait()
        self._news_ready = anyio.Event()
        news, self._news = self._news, {}
        return news

    def untrack(self, keys: Iterable[str]) -> None:
        tracked = self.tracked
        for key in keys:
            tracked.pop(key, None)


@dataclasses.dataclass(kw_only=True, repr=False)
class Backend(Component):
    """Base class of backend settings: where a job runs.

    Subclasses add their own typed fields and implement :meth:`make_driver`. :meth:`validate`
    runs at submission and raises :class:`~ganga_async.JobSpecError` for settings that cannot
    work. Register a new backend under the ``ganga_async.backends`` entry-point group.
    """

    category: ClassVar[str] = "backend"
    submit_batch: ClassVar[int] = 0
    """Subjobs handed to one :meth:`BackendDriver.bulk_submit` call; 0 means ``[Pipeline]
    submit_batch``. A backend with job arrays asks for more, so a master becomes one array."""

    def validate(self, job: JobView) -> None:
        """Raise JobSpecError when these settings cannot run ``job``."""

    def required_credentials(self) -> list[Credential]:
        """The credentials every job on these settings needs to be submitted and monitored
        (a grid backend returns its ``VomsProxy``). The engine's credential gate holds jobs
        until they have ``[Credentials] min_time_left``; none by default."""
        return []

    @classmethod
    @abc.abstractmethod
    def make_driver(cls, context: DriverContext) -> BackendDriver:
        """Create the driver that runs every job of this backend in one engine."""
