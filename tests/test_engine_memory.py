"""An engine that runs for weeks keeps in memory only the jobs it works on and those its user
holds: a finished job nobody holds leaves, one its user holds stays the same object."""

from __future__ import annotations

import gc
import platform
import weakref
from pathlib import Path

import anyio
import pytest

from ganga_async import ArgSplitter, Config, Engine, Executable, Job, Local, Status
from ganga_async.pipeline.allocator import MemoryReturn, malloc_trim

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


async def test_no_stage_keeps_the_last_job_once_it_has_ended(gangadir: Path, config: Config) -> None:
    """A stage waiting for its next item holds nothing of the last one: the last job of a
    burst leaves memory without waiting for another job to push it out."""
    async with Engine(gangadir, config=config) as engine:
        job = await engine.submit(true_job())
        await engine.wait(job, timeout=60)
        gone = weakref.ref(job)
        del job
        with anyio.fail_after(30):
            gc.collect()
            while gone() is not None:
                await anyio.sleep(0.05)
                gc.collect()


async def test_a_job_loaded_again_as_soon_as_it_left_memory_has_its_last_status(
        gangadir: Path, config: Config) -> None:
    """Its final statuses may still be queued for the repository's next write: they are
    written before it is read back."""
    async with Engine(gangadir, config=config) as engine:
        job = await engine.submit(true_job())
        await engine.wait(job, timeout=60)
        job_id, gone = job.id, weakref.ref(job)
        assert job_id is not None
        del job
        gc.collect()
        assert gone() is None
        again = await engine.get(job_id)
        assert again.status is Status.COMPLETED
        assert [s.status for s in again.subjobs] == [Status.COMPLETED] * 3


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


async def test_the_allocator_is_trimmed_once_after_master_jobs_end_together() -> None:
    trimmed = anyio.Event()
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        trimmed.set()
        return 1

    memory = MemoryReturn(delay=0.01, trim=trim)
    async with anyio.create_task_group() as tg:
        await tg.start(memory.run)
        memory.job_ended()
        memory.job_ended()
        with anyio.fail_after(30):
            await trimmed.wait()
        await anyio.sleep(0.1)
        tg.cancel_scope.cancel()
    assert calls == [0] and memory.trims == 1


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_malloc_trim_is_found() -> None:
    trim = malloc_trim()
    assert trim is not None and trim(0) in (0, 1)
