"""``Null``: a backend that accepts every unit and runs nothing, for measuring the engine alone.

``bulk_submit`` returns an id per unit and does nothing else; a ``sweep`` finds nothing. With
``Null(complete=True)`` every accepted unit is reported completed at once through the driver's
news, so the engine finalises it the way it finalises real jobs (used to build a repository
whose master is finished).

Importing this module registers the class with ``ganga_async._plugins`` under the name
``Null``, which is how an engine, including one in a fresh interpreter that imports this
module, finds it without an entry point.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

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

__all__ = ["Null", "NullDriver"]


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
