"""``Null``: a backend that accepts every unit and runs nothing, for measuring the engine alone.

``bulk_submit`` returns an id per unit and does nothing else; ``status`` knows of nothing. With
``Null(complete=True)`` every accepted unit is reported completed at once through
:meth:`NullDriver.updates`, so the engine finalises it the way it finalises real jobs (used to
build a repository whose master is finished).

Importing this module registers the class with ``ganga_async._plugins`` under the name
``Null``, which is how an engine, including one in a fresh interpreter that imports this
module, finds it without an entry point.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

import anyio
from anyio.abc import TaskStatus

from ganga_async import (
    Backend,
    BackendDriver,
    BackendStatus,
    DriverContext,
    Handle,
    Status,
    _plugins,
)
from ganga_async.backends.base import SubmitUnit

__all__ = ["Null", "NullDriver"]


@dataclasses.dataclass(kw_only=True, repr=False)
class Null(Backend):
    """Accept every unit, run nothing; ``complete=True`` reports each one completed at once."""

    complete: bool = False

    @classmethod
    def make_driver(cls, context: DriverContext) -> NullDriver:
        return NullDriver()


class NullDriver(BackendDriver):
    """The runtime of :class:`Null`: ids out, nothing else (but completions when asked)."""

    def __init__(self) -> None:
        self._news: dict[str, BackendStatus] = {}
        self._news_ready = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        ids: list[str | BaseException] = [unit.key for unit in units]
        finished = [unit.key for unit in units if getattr(unit.backend, "complete", False)]
        if finished:
            now = time.time()
            done = BackendStatus(Status.COMPLETED, exitcode=0, started=now, ended=now)
            self._news.update(dict.fromkeys(finished, done))
            self._news_ready.set()
        return ids

    async def kill(self, handles: Sequence[Handle]) -> None:
        """Nothing runs, so there is nothing to stop."""

    async def status(self, handles: Sequence[Handle]) -> Mapping[str, BackendStatus]:
        return {}

    async def updates(self) -> Mapping[str, BackendStatus]:
        await self._news_ready.wait()
        self._news_ready = anyio.Event()
        news, self._news = self._news, {}
        return news


_plugins.register("backend", Null)
