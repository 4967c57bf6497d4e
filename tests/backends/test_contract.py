"""The backend contract as a driver sees the engine use it: sweeps on the engine's one schedule,
news through the one stream, untracking of what the engine no longer cares about."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import anyio
import pytest
from anyio.abc import TaskStatus

from ganga_async import Backend, Config, Engine, Executable, Job, Status, _plugins
from ganga_async.backends import BackendStatus, DriverContext, Handle, SubmitUnit
from ganga_async.backends.base import Tracked, TrackingDriver

pytestmark = pytest.mark.anyio


class _Recording(TrackingDriver[Tracked]):
    """Accepts every unit, runs nothing, and notes when the engine sweeps and what it untracks;
    ``changes`` are published by the next sweep."""

    last: _Recording | None = None

    def __init__(self, context: DriverContext) -> None:
        super().__init__(context)
        self.sweeps: list[float] = []
        self.untracked: list[str] = []
        self.changes: dict[str, BackendStatus] = {}
        self.swept = anyio.Event()
        _Recording.last = self

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        for unit in units:
            self.tracked[unit.key] = Tracked(Handle(unit.key, unit.key, unit.outputdir))
        return [unit.key for unit in units]

    async def track(self, handles: Sequence[Handle]) -> None:
        for handle in handles:
            self.tracked.setdefault(handle.key, Tracked(handle))

    def untrack(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        self.untracked += keys
        super().untrack(keys)

    async def kill(self, handles: Sequence[Handle]) -> None:
        """Nothing runs."""

    async def sweep(self) -> int:
        self.sweeps.append(anyio.current_time())
        self.swept.set()
        self.swept = anyio.Event()
        changes, self.changes = self.changes, {}
        return self.publish(changes)

    def poll_bounds(self) -> tuple[float, float]:
        return 0.1, 0.4


@dataclasses.dataclass(kw_only=True, repr=False)
class Recording(Backend):
    @classmethod
    def make_driver(cls, context: DriverContext) -> _Recording:
        return _Recording(context)


async def until(engine: Engine, job: Job, status: Status) -> None:
    async with engine.events() as events:
        if job.status is status:
            return
        with anyio.fail_after(10):
            async for event in events:
                if event.fqid == job.fqid and event.new is status:
                    return


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


async def sweeps(driver: _Recording, count: int) -> None:
    """Until the driver has been swept ``count`` times."""
    with anyio.fail_after(20):
        while len(driver.sweeps) < count:
            await driver.swept.wait()


def within(seen: list[float], expected: list[float]) -> bool:
    """Each gap is the interval the engine chose plus however late the loop woke up: never
    shorter (bar clock rounding), and on a loaded machine possibly much longer."""
    return len(seen) == len(expected) and all(
        want - 0.02 <= gap <= want + 0.3 for gap, want in zip(seen, expected, strict=True))


async def test_the_engine_sweeps_at_the_shortest_bound_then_stretches_to_the_longest_and_back(
    gangadir: Path, config: Config
) -> None:
    _plugins.register("backend", Recording)
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/true"), backend=Recording())
        await engine.submit(job)
        driver = _Recording.last
        assert driver is not None
        await until(engine, job, Status.SUBMITTED)
        await sweeps(driver, 6)
        assert within(gaps(driver.sweeps)[:5], [0.15, 0.225, 0.3375, 0.4, 0.4]), gaps(driver.sweeps)
        driver.changes = {job.fqid: BackendStatus(Status.RUNNING, started=1.0)}
        await until(engine, job, Status.RUNNING)
        before = len(driver.sweeps)
        await sweeps(driver, before + 1)
        assert within(gaps(driver.sweeps[before - 1:])[:1], [0.1]), gaps(driver.sweeps)
        await engine.force_status(job, "failed")
        assert driver.untracked == [job.fqid] and not driver.tracked
