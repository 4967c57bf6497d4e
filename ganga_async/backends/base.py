"""The backend plugin contract.

A backend comes in two parts:

- :class:`Backend` is the settings object a user puts on a job (``Local(max_concurrent=4)``):
  a typed dataclass, serialised with the job and frozen once the job is submitted;
- :class:`BackendDriver` is the runtime: the engine creates one driver per backend class and
  keeps it for its whole life. All jobs of that backend go through it, so a driver can submit
  many subjobs at once (job arrays) and ask for the status of every active job in one query.

The engine does the bookkeeping once for all backends: it persists the intent before calling
:meth:`BackendDriver.bulk_submit`, records the native ids it returns, polls
:meth:`BackendDriver.status` with every active handle in one call per sweep, applies the state
transitions, and finalises jobs. Drivers only talk to their system.
"""

from __future__ import annotations

import abc
import dataclasses
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import anyio
from anyio.abc import TaskStatus

from .._component import Component, JobView
from ..applications.base import Command
from ..states import Status

if TYPE_CHECKING:
    from ..config import Config
    from ..credentials.base import Credential

__all__ = ["Backend", "BackendDriver", "BackendStatus", "DriverContext", "Handle", "SubmitUnit"]


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
                 ended: float | None = None) -> BackendStatus:
    """The status of a process that ended with exit code ``code`` (negative: the signal that
    ended it; None: not known), as the process that watched it recorded it: ``killed`` when it
    was killed on request, ``error`` when it could not run or its outputs could not be saved."""
    if killed:
        return BackendStatus(Status.KILLED, exitcode=code, reason="killed", started=started, ended=ended)
    if error:
        return BackendStatus(Status.FAILED, exitcode=code, reason=error, started=started, ended=ended)
    if code == 0:
        return BackendStatus(Status.COMPLETED, exitcode=0, started=started, ended=ended)
    if code is None:
        reason = "ended without an exit code"
    elif code < 0:
        try:
            reason = f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            reason = f"killed by signal {-code}"
    else:
        reason = f"exit code {code}"
    return BackendStatus(Status.FAILED, exitcode=code, reason=reason, started=started, ended=ended)


@dataclasses.dataclass(frozen=True, slots=True)
class DriverContext:
    """What a driver gets from the engine."""

    config: Config
    gangadir: Path


class BackendDriver(abc.ABC):
    """The runtime of one backend inside one engine.

    Lifecycle: the engine calls ``await task_group.start(driver.run)`` and later
    :meth:`aclose`. Every method may be called concurrently from several tasks.
    """

    @abc.abstractmethod
    async def run(self, *, task_status: TaskStatus[None]) -> None:
        """Run the driver's background work; call ``task_status.started()`` once ready."""

    @abc.abstractmethod
    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        """Submit many units at once; return, in order, each unit's native id or its error.

        A unit whose error is returned was not accepted by the backend. Raise only when
        nothing was submitted.
        """

    async def warm_up(self) -> None:
        """Get ready for a submission that comes soon: the engine calls it in the background
        once a job's description is valid, while the job is persisted and split. A driver with
        helpers to start (the Local backend's runner) starts them here; the default does
        nothing. Errors are logged, and met again by :meth:`bulk_submit`."""

    async def submit(self, unit: SubmitUnit) -> str:
        """Submit one unit and return its native id."""
        (result,) = await self.bulk_submit([unit])
        if isinstance(result, BaseException):
            raise result
        return result

    @abc.abstractmethod
    async def kill(self, handles: Sequence[Handle]) -> None:
        """Ask the backend to stop these (sub)jobs; their status follows through :meth:`status`."""

    @abc.abstractmethod
    async def status(self, handles: Sequence[Handle]) -> Mapping[str, BackendStatus]:
        """One bulk status query for all these handles, keyed by ``Handle.key``.

        Handles may come from an earlier engine (after a restart). A handle missing from the
        result has no news.
        """

    async def forget(self, handles: Sequence[Handle]) -> None:
        """Drop what the backend kept of these (sub)jobs' earlier runs: the engine is about to
        submit them again, and a restarted engine must never take an old end for the new
        run's. The default does nothing, for a backend that keeps no record of its own beside
        its native ids (those of the new run replace the old ones)."""

    async def updates(self) -> Mapping[str, BackendStatus]:
        """Wait for status news the backend pushes by itself, keyed by ``Handle.key``.

        A backend without any keeps the default, which waits forever: the engine then relies
        on :meth:`status` every poll interval.
        """
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Release the driver's resources. Jobs it submitted keep running."""


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
