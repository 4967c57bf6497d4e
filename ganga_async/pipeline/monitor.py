"""Monitoring: one driver and one monitor task per backend, the news they bring applied by the
state machine, and the finalise stage that puts ended (sub)jobs into their final status."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream

from .. import _plugins
from .._exceptions import EngineClosedError, GangaAsyncError
from ..backends.base import Backend, BackendDriver, BackendStatus, DriverContext, Handle
from ..credentials.manager import Requirement
from ..model import machine
from ..persistence.lock import EngineLock
from ..states import Status
from .active import Active, ActiveSet
from .context import Context, Ended, Live, engine_log, indices_of
from .postprocess import check_ended

__all__ = ["Active", "Backends", "Cadence", "FinaliseStage", "MonitorGate"]

log = engine_log

NEWS_CHUNK = 2000
"""News applied between two yields of the event loop: about 10 ms of work."""

_BULK = frozenset({Status.SUBMITTED, Status.RUNNING})
"""News the state machine applies to many subjobs of a master at once (``machine.move_many``)."""


class Backends:
    """The drivers of the backends in use, started on first use with a monitor task each,
    and the (sub)jobs each is working on (``active[name][fqid]``)."""

    def __init__(self, ctx: Context, lock: EngineLock) -> None:
        self.ctx = ctx
        self.lock = lock
        """The gangadir's engine lock: held before any driver starts, so no two engines ever
        run (or monitor) one gangadir's jobs."""
        self.drivers: dict[str, BackendDriver] = {}
        self.active: dict[str, ActiveSet] = {}
        self.cadences: dict[str, Cadence] = {}
        self.handing_over: dict[str, BackendStatus | None] = {}
        """Keys of units in a ``bulk_submit`` that has not returned, with the latest news of
        each that came meanwhile (a process can end before its submission call returns)."""
        self._lock = anyio.Lock()

    async def driver(self, name: str) -> BackendDriver:
        """The driver of backend ``name``, started (with its monitor) on first use."""
        driver = self.drivers.get(name)
        if driver is not None:
            return driver
        async with self._lock:
            driver = self.drivers.get(name)
            if driver is None:
                ctx = self.ctx
                tg = ctx.tg
                if tg is None:
                    raise EngineClosedError("the engine is not running")
                await self.lock.acquire()
                cls: type[Backend] = _plugins.load("backend", name)
                driver = cls.make_driver(DriverContext(config=ctx.config, gangadir=ctx.gangadir))
                await tg.start(driver.run)
                self.active[name] = ActiveSet()
                self.drivers[name] = driver
                if ctx.monitoring:
                    await tg.start(self._monitor, name, driver)
        return driver

    async def warm_up(self, name: str) -> None:
        """Start the backend's driver and its helpers while a job is persisted and split (see
        :meth:`BackendDriver.warm_up`); a failure here is met again at submission."""
        try:
            await (await self.driver(name)).warm_up()
        except Exception as exc:
            log.warning("backend not ready", backend=name, error=str(exc))

    def handles(self, live: Live, indices: list[int | None]) -> dict[str, list[Handle]]:
        """The handles of those (sub)jobs a backend is working on, by backend."""
        found: dict[str, list[Handle]] = {}
        for index in indices:
            key = live.record.key(index)
            for name, active in self.active.items():
                entry = active.get(key)
                if entry is not None:
                    found.setdefault(name, []).append(entry.handle)
        return found

    def drop(self, live: Live, indices: list[int | None] | None = None) -> None:
        """Stop watching the (sub)jobs (all of the job's when ``indices`` is None), here and
        in their drivers."""
        for name, active in self.active.items():
            if indices is None:
                keys = active.keys_of(live)
            else:
                keys = [k for k in map(live.record.key, indices) if k in active]
            for key in keys:
                del active[key]
            if keys:
                self.drivers[name].untrack(keys)

    def soon(self, name: str) -> None:
        """Sweep backend ``name`` soon: something was submitted to it or killed there."""
        cadence = self.cadences.get(name)
        if cadence is not None:
            cadence.soon()

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            for driver in self.drivers.values():
                await driver.aclose()

    async def _monitor(self, name: str, driver: BackendDriver, *, task_status: TaskStatus[None]) -> None:
        """Apply the driver's news as they come, and ask it for a sweep on the engine's schedule."""
        monitoring = self.ctx.config["Monitoring"]
        active = self.active[name]
        gate = MonitorGate(self.ctx, name, active)
        cadence = self.cadences[name] = Cadence(driver)
        task_status.started()
        while True:
            if await gate.paused():
                cadence.now()
                continue
            news = await cadence.news()
            if news is not None:
                cadence.soon()
                await self.apply_news(active, news)
                del news  # not kept while waiting: see SplitStage.run
                continue
            found = 0
            if active:
                try:
                    with anyio.fail_after(monitoring["command_timeout"]):
                        found = await driver.sweep()
                except (GangaAsyncError, TimeoutError, OSError) as exc:
                    log.warning("status sweep failed; retrying next sweep", backend=name, error=str(exc))
            cadence.swept(found)

    async def apply_news(self, active: ActiveSet, news: Mapping[str, BackendStatus]) -> None:
        """Have the state machine apply a backend's news; what ended goes to the finalise stage,
        what an earlier engine left and the backend never received back to submission. A large
        batch (one sweep of 10^5 jobs) is applied ``NEWS_CHUNK`` at a time, the loop free
        between chunks (the batch is the monitor's own: nothing changes it meanwhile)."""
        items = iter(news.items())
        while chunk := list(itertools.islice(items, NEWS_CHUNK)):
            await self._apply(active, chunk)
            if len(chunk) == NEWS_CHUNK:
                await anyio.lowlevel.checkpoint()

    async def _apply(self, active: ActiveSet, news: list[tuple[str, BackendStatus]]) -> None:
        ended: list[Ended] = []
        resubmit: dict[int, tuple[Live, list[int | None]]] = {}
        changes = machine.Changes()
        now = time.time()
        one_by_one: list[tuple[Active, BackendStatus]] = []
        # News that subjobs are submitted or running, by master and status, for the state
        # machine to apply many at once (machine.move_many); the rest one at a time.
        moving: dict[tuple[Live, Status], tuple[list[int], list[BackendStatus]]] = {}
        last: tuple[Live | None, Status | None] = (None, None)
        indices: list[int] = []
        statuses: list[BackendStatus] = []
        entries, lives = active.entries, active.lives  # no Active made for the bulk news
        for key, status in news:
            held = entries.get(key)
            if held is None:
                if key in self.handing_over:  # applied once its submission call returns
                    self.handing_over[key] = status
                continue
            new = status.status
            index = held[1]
            if new not in _BULK or index is None or status.native_id is not None:
                one_by_one.append((active[key], status))
                continue
            live = lives[held[0]]
            if live is not last[0] or new is not last[1]:
                last = (live, new)
                found = moving.get(last)
                if found is None:
                    found = moving[last] = ([], [])
                indices, statuses = found
            indices.append(index)
            statuses.append(status)
        for (live, new), (indices, statuses) in moving.items():
            for n in machine.move_many(changes, live.record, new, indices, statuses, now):
                one_by_one.append((active[live.record.key(indices[n])], statuses[n]))
        for entry, status in one_by_one:
            record = entry.live.record
            key = record.key(entry.index)
            if status.status is Status.NEW and entry.recovered:
                del active[key]
                if machine.never_received(changes, record, entry.index, now):
                    resubmit.setdefault(entry.live.id, (entry.live, []))[1].append(entry.index)
                continue
            end = machine.apply_news(changes, record, entry.index, status, now)
            if end is not None:
                del active[key]
                ended.append((entry.live, entry.index, end))
        self.ctx.commit(changes)
        if ended and self.ctx.to_finalise is not None:
            await self.ctx.to_finalise.send(ended)
        for live, chosen in resubmit.values():
            log.info("resubmitting what never started", job_id=live.id, count=len(chosen))
            await self.ctx.submit_inbox().send((live, indices_of(chosen)))


class FinaliseStage:
    """Takes the (sub)jobs a backend reported ended, all of one piece of news at once, into
    their final status, once their checkers have looked at the completed ones."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run(self, inbox: MemoryObjectReceiveStream[list[Ended]], *,
                  task_status: TaskStatus[None]) -> None:
        task_status.started()
        async with inbox:
            async for batch in inbox:
                await self._finish(batch)
                del batch  # not kept while waiting: see SplitStage.run

    async def _finish(self, batch: list[Ended]) -> None:
        ended, checked = await check_ended(self.ctx, batch)
        changes = machine.Changes()
        now = time.time()
        for n, (live, index, end) in enumerate(ended):
            if live.record.status is Status.REMOVED:
                continue
            machine.finish(changes, live.record, index, end, now, checker=n in checked)
        self.ctx.commit(changes)


class MonitorGate:
    """Pauses a backend's monitoring while a credential its active jobs need has expired."""

    def __init__(self, ctx: Context, name: str, active: ActiveSet) -> None:
        self.ctx = ctx
        self.name = name
        self.active = active
        self._size = -1
        self._collected = 0.0
        self._needs: list[Requirement] = []
        self._reason: str | None = None

    def _collect(self) -> list[Requirement]:
        """The credentials the active jobs need, worked out again when the set of active jobs
        changed, at most once per ``check_interval`` (it walks every active job)."""
        credentials = self.ctx.credentials
        if not credentials.in_use:
            return []
        now = time.monotonic()
        interval = self.ctx.config["Credentials"]["check_interval"]
        if len(self.active) != self._size and (self._size < 0 or now - self._collected >= interval):
            self._size = len(self.active)
            self._collected = now
            needs: dict[str, Requirement] = {}
            for live in self.active.masters():
                for need in credentials.requirements(live.job):
                    needs.setdefault(need.credential.key(), need)
            self._needs = list(needs.values())
        return self._needs

    async def paused(self) -> bool:
        """False when monitoring may go on; else wait for the credential manager's next look
        and return True (the caller asks again)."""
        needs = self._collect()
        if not needs:
            return False
        reason = await self.ctx.credentials.expired(needs)
        if reason is None:
            if self._reason is not None:
                log.info("monitoring resumed", backend=self.name)
                self._reason = None
            return False
        if self._reason != reason:
            log.warning("monitoring paused: jobs keep their last status", backend=self.name,
                        reason=reason)
            self._reason = reason
        await self.ctx.credentials.next_sweep()
        return True


class Cadence:
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
