"""A large master left half submitted (20,000 subjobs) is recovered in slices: every subjob ends
where a small one's recovery takes it, nothing is lost and nothing is submitted twice.

The backend here (``Ledger``) runs nothing: it counts what it is handed, answers a recovery's
``track`` with what it knows (never received: ``NEW``; received: running or completed), a kill
with ``killed``, and never sweeps. The half-submitted state is the one an engine killed during
submission leaves: the first half ``submitted`` with their ids, the rest ``submitting`` with
none, a few of those waiting out a retry's backoff.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest
from anyio.abc import TaskStatus

from ganga_async import (
    ArgSplitter,
    Backend,
    BackendStatus,
    Config,
    DriverContext,
    Engine,
    Executable,
    Handle,
    Job,
    Status,
    _plugins,
)
from ganga_async.backends.base import SubmitUnit, Tracked, TrackingDriver

N = 20_000
HALF = N // 2
WAITING = range(HALF, HALF + 5)
"""Subjobs left ``submitting`` waiting for a retry due in an hour: neither tracked nor submitted."""

HANDED: Counter[str] = Counter()
"""How many times each subjob was handed to the backend, over both engines of the test."""
TRACKED: list[int] = []
"""How many handles each ``track`` call was given; while ``FAILING`` is set, it fails."""
FAILING: list[bool] = [False]


@dataclasses.dataclass(kw_only=True, repr=False)
class Ledger(Backend):
    """Runs nothing; counts the units it is given (see the module's docstring)."""

    @classmethod
    def make_driver(cls, context: DriverContext) -> LedgerDriver:
        return LedgerDriver(context)


class LedgerDriver(TrackingDriver[Tracked]):
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        HANDED.update(unit.key for unit in units)
        return [f"L{unit.key}" for unit in units]

    async def track(self, handles: Sequence[Handle]) -> None:
        TRACKED.append(len(handles))
        if FAILING[0]:
            FAILING[0] = False
            raise OSError("the backend does not answer this time")
        news: dict[str, BackendStatus] = {}
        for handle in handles:
            index = int(handle.key.split(".")[1])
            assert handle.outputdir.name == str(index)
            if not handle.native_id:
                news[handle.key] = BackendStatus(Status.NEW)
                continue
            assert HANDED[handle.key] == 1 and handle.native_id == f"L{handle.key}"
            self.tracked[handle.key] = Tracked(handle)
            news[handle.key] = (BackendStatus(Status.RUNNING, started=1.0) if index % 2 else
                                BackendStatus(Status.COMPLETED, exitcode=0, started=1.0, ended=2.0))
        self.publish(news)

    async def kill(self, handles: Sequence[Handle]) -> None:
        self.publish({h.key: BackendStatus(Status.KILLED, reason="killed") for h in handles})

    async def sweep(self) -> int:
        return 0


_plugins.register("backend", Ledger)


async def _until(job: Job, counts: dict[str, int]) -> None:
    with anyio.move_on_after(120 if len(job.subjobs) > 100 else 10):
        while job.subjobs.counts() != counts:  # noqa: ASYNC110 (counts of 20,000, no event)
            await anyio.sleep(0.05)
    assert job.subjobs.counts() == counts


async def _half_submitted(gangadir: Path, config: Config, n: int, waiting: range
                          ) -> tuple[int | None, Path]:
    """A master of ``n`` on Ledger left as an engine killed half-way through the submission
    leaves it, ``waiting`` among the second half waiting out a retry's backoff."""
    HANDED.clear()
    TRACKED.clear()
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/echo"), backend=Ledger(),
                  splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
        await engine.submit(job)
        await _until(job, {"submitted": n})
        job_id, path = job.id, engine.repository.path
    with sqlite3.connect(path) as db:
        db.execute("UPDATE subjobs SET status = ?, backend_id = NULL, t_submitted = 0 "
                   "WHERE idx >= ?", (Status.SUBMITTING.code, n // 2))
        db.execute("UPDATE subjobs SET retry_at = ? WHERE idx BETWEEN ? AND ?",
                   (time.time() + 3600, waiting.start, waiting.stop - 1))
        db.execute("UPDATE jobs SET status = 'submitting'")
    db.close()
    for index in range(n // 2, n):
        del HANDED[f"{job_id}.{index}"]
    return job_id, path


@pytest.mark.anyio
async def test_a_large_half_submitted_master_recovers_each_subjob_once(
    gangadir: Path, config: Config
) -> None:
    job_id, path = await _half_submitted(gangadir, config, N, WAITING)

    async with Engine(gangadir, config=config) as engine:
        (job,) = await engine.jobs()
        resubmitted = N - HALF - len(WAITING)
        await _until(job, {"completed": HALF // 2, "running": HALF // 2,
                           "submitted": resubmitted, "submitting": len(WAITING)})
        assert TRACKED == [N - len(WAITING)]
        assert job.status is Status.SUBMITTING  # derived: 5 still wait for their retry

    assert sorted(HANDED.values()) == [1] * (N - len(WAITING)), "a subjob handed over twice"
    assert not any(f"{job_id}.{i}" in HANDED for i in WAITING), "a retry submitted before due"
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT idx, status, backend_id, exitcode, submit_counter, retry_at > 0 "
                          "FROM subjobs WHERE job_id = ? ORDER BY idx", (job_id,)).fetchall()
    expected = []
    for index in range(N):
        key = f"{job_id}.{index}"
        if index < HALF:
            done = index % 2 == 0
            expected.append((index, (Status.COMPLETED if done else Status.RUNNING).code,
                             f"L{key}", 0 if done else None, 1, 0))
        elif index in WAITING:
            expected.append((index, Status.SUBMITTING.code, None, None, 1, 1))
        else:
            expected.append((index, Status.SUBMITTED.code, f"L{key}", None, 1, 0))
    assert rows == expected


@pytest.mark.anyio
async def test_subjobs_of_a_backend_that_did_not_answer_are_tracked_again_and_recover_once(
    gangadir: Path, config: Config
) -> None:
    """The backend fails the reopened engine's first ``track``: the engine opens all the same,
    the (sub)jobs keep their status, and the next poll interval tracks them again (those
    killed meanwhile left out), after which they recover as above."""
    n, waiting = 40, range(20, 22)
    job_id, path = await _half_submitted(gangadir, config, n, waiting)
    FAILING[0] = True
    async with Engine(gangadir, config=config) as engine:
        (job,) = await engine.jobs()
        assert TRACKED == [n - len(waiting)] and job.subjobs.counts() == {
            "submitted": n // 2, "submitting": n // 2}
        await engine.kill(job.subjobs[1])
        await _until(job, {"completed": 10, "running": 9, "killed": 1,
                           "submitted": n // 2 - len(waiting), "submitting": len(waiting)})
        assert TRACKED == [n - len(waiting), n - len(waiting) - 1]
    assert sorted(HANDED.values()) == [1] * (n - len(waiting)), "a subjob handed over twice"
