"""``Null``: a backend that accepts every unit and runs nothing, for measuring the engine alone.

``bulk_submit`` returns an id per unit and does nothing else; a ``sweep`` finds nothing. With
``Null(complete=True)`` every accepted unit is reported completed at once through the driver's
news, so the engine finalises it the way it finalises real jobs (used to build a repository
whose master is finished).

``NullQueue`` runs nothing either, but holds every unit ``submitted`` and answers each sweep
with one query giving the status of all it holds, as one ``squeue`` would; the benchmark moves
them all at once (``NullQueueDriver.move_all``) and asks for the sweeps (issue 20, figure 3).

Importing this module registers the classes with ``ganga_async._plugins`` under the names
``Null`` and ``NullQueue``, which is how an engine, including one in a fresh interpreter that
imports this module, finds them without an entry point.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import ClassVar

import anyio
from anyio.abc import TaskStatus

from ganga_async import (
    Backend,
    BackendStatus,
    DriverContext,
    Handle,
    Status,
    _plugins,
)
from ganga_async.backends.base import SubmitUnit, Tracked, TrackingDriver

__all__ = ["Null", "NullDriver", "NullQueue", "NullQueueDriver"]


@dataclasses.dataclass(kw_only=True, repr=False)
class Null(Backend):
    """Accept every unit, run nothing; ``complete=True`` reports each one completed at once."""

    complete: bool = False

    @classmethod
    def make_driver(cls, context: DriverContext) -> NullDriver:
        return NullDriver(context)


class NullDriver(TrackingDriver[Tracked]):
    """The runtime of :class:`Null`: ids out, nothing else (but completions when asked). It
    tracks nothing: nothing it accepted ever changes but by a completion it reports at once."""

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        ids: list[str | BaseException] = [unit.key for unit in units]
        finished = [unit.key for unit in units if getattr(unit.backend, "complete", False)]
        if finished:
            now = time.time()
            done = BackendStatus(Status.COMPLETED, exitcode=0, started=now, ended=now)
            self.publish(dict.fromkeys(finished, done))
        return ids

    async def track(self, handles: Sequence[Handle]) -> None:
        """Nothing to watch: what an earlier engine left keeps its status."""

    async def kill(self, handles: Sequence[Handle]) -> None:
        """Nothing runs, so there is nothing to stop."""

    async def sweep(self) -> int:
        return 0


_plugins.register("backend", Null)


@dataclasses.dataclass(kw_only=True, repr=False)
class NullQueue(Backend):
    """A queue that runs nothing but answers status queries: every unit it accepts stays
    ``submitted`` until the benchmark moves them all (:meth:`NullQueueDriver.move_all`), and
    each ``sweep`` is one query answering the status of every unit it holds at once, as one
    ``squeue`` does. It never sweeps by itself: its bounds are an hour, and the benchmark asks
    for a sweep when it wants one."""

    submit_batch: ClassVar[int] = 100_000

    @classmethod
    def make_driver(cls, context: DriverContext) -> NullQueueDriver:
        return NullQueueDriver(context)


class NullQueueDriver(TrackingDriver[Tracked]):
    """The runtime of :class:`NullQueue`: the queue's answer is the status it holds for every
    unit; ``sweeps`` counts the queries."""

    def __init__(self, context: DriverContext) -> None:
        super().__init__(context)
        self.queue: dict[str, BackendStatus] = {}
        self.sweeps = 0
        self.idle = anyio.Event()
        """Set when the monitor asks for news and none are waiting: it applied all it had."""

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        queued = BackendStatus(Status.SUBMITTED)
        for unit in units:
            self.tracked[unit.key] = Tracked(Handle(unit.key, unit.key, unit.outputdir), queued)
            self.queue[unit.key] = queued
        return [unit.key for unit in units]

    def move_all(self, status: Status) -> None:
        """Every unit the queue holds is now in ``status`` (seen at the next sweep)."""
        now = time.time()
        moved = BackendStatus(status, started=now)
        self.queue = dict.fromkeys(self.queue, moved)

    async def track(self, handles: Sequence[Handle]) -> None:
        for handle in handles:
            self.tracked.setdefault(handle.key, Tracked(handle))

    async def kill(self, handles: Sequence[Handle]) -> None:
        killed = BackendStatus(Status.KILLED, reason="killed")
        for handle in handles:
            self.queue[handle.key] = killed

    async def news(self) -> Mapping[str, BackendStatus]:
        if not self._news:
            self.idle.set()
        return await super().news()

    async def sweep(self) -> int:
        self.sweeps += 1
        answer = {key: self.queue[key] for key in self.tracked if key in self.queue}
        return await self.publish_sweep(answer)

    def poll_bounds(self) -> tuple[float, float]:
        return 3600.0, 3600.0


_plugins.register("backend", NullQueue)
