"""An engine that runs for weeks keeps in memory only the jobs it works on and those its user
holds: a finished job nobody holds leaves, one its user holds stays the same object."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from ganga_async import ArgSplitter, Config, Engine, Executable, Job, Local, Status

pytestmark = pytest.mark.anyio


def true_job(n: int = 3) -> Job:
    return Job(application=Executable(exe="/bin/true"), backend=Local(max_concurrent=3),
               splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))


async def test_a_finished_job_nobody_holds_leaves_memory_and_loads_again(
        gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = await engine.submit(true_job())
        await engine.wait(job, timeout=60)
        job_id, gone, sub = job.id, weakref.ref(job), weakref.ref(job.subjobs[1])
        assert job_id is not None
        del job
        # the stages' last items are the next job's, not this one's
        await engine.wait(await engine.submit(true_job()), timeout=60)
        gc.collect()
        assert gone() is None and sub() is None
        again = await engine.get(job_id)
        assert again.status is Status.COMPLETED and len(again.subjobs) == 3
        assert await engine.get(job_id) is again


async def test_a_finished_job_its_user_holds_stays_the_same_object_and_can_be_resubmitted(
        gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = await engine.submit(true_job())
        await engine.wait(job, timeout=60)
        subjob = job.subjobs[2]
        gc.collect()
        assert await engine.get(job.fqid) is job
        assert (await engine.get(f"{job.fqid}.2")).status is Status.COMPLETED
        assert await engine.peek(subjob) == ""
        await engine.resubmit(job, statuses=["completed"])
        await engine.wait(job, timeout=60)
        assert job.status is Status.COMPLETED and job.info.submit_counter >= 1
        assert await engine.get(job.fqid) is job
