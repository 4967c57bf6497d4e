"""The Condor backend through faults, against the real pool: the schedd restarting in the middle
of a run, and the engine restarting while its cluster runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from ganga_async import ArgSplitter, Condor, Config, Engine, Executable, Job, Status

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("condor_pool")]


async def until_one_of(engine: Engine, job: Job, statuses: set[Status], seconds: float = 60) -> None:
    """Wait, on the engine's events, until ``job`` is in one of ``statuses``."""
    async with engine.events() as events:
        if job.status in statuses:
            return
        with anyio.fail_after(seconds):
            async for event in events:
                if event.fqid == job.fqid and event.new in statuses:
                    return


def sh_each(script: str, values: list[str], **kwargs: object) -> Job:
    return Job(application=Executable(exe="/bin/sh"),
               splitter=ArgSplitter(args=[["-c", script, "sh", v] for v in values]),
               **kwargs)  # type: ignore[arg-type]


async def test_a_schedd_restart_in_the_middle_of_a_run_loses_no_job(
    gangadir: Path, condor_config: Config, condor_cli: Callable[..., str]
) -> None:
    async with Engine(gangadir, config=condor_config) as engine:
        job = sh_each('sleep 2; echo "ok $1"', [str(i) for i in range(4)], backend=Condor())
        await engine.submit(job)
        await until_one_of(engine, job.subjobs[0], {Status.RUNNING, Status.COMPLETING, Status.COMPLETED})
        condor_cli("htcondor-chroot", "condor_restart", "-schedd")
        await engine.wait(job, timeout=120)
        assert job.status is Status.COMPLETED, job.subjobs.counts()
        for i, subjob in enumerate(job.subjobs):
            assert (subjob.outputdir / "stdout").read_text() == f"ok {i}\n"


async def test_an_engine_restarted_while_its_cluster_runs_follows_it_to_the_end(
    gangadir: Path, condor_config: Config
) -> None:
    async with Engine(gangadir, config=condor_config) as engine:
        job = sh_each('sleep 2; echo "ok $1"', ["0", "1", "2"], backend=Condor())
        await engine.submit(job)
        await until_one_of(engine, job.subjobs[2], {Status.SUBMITTED, Status.RUNNING})
        job_id = job.id
        natives = [s.backend_id for s in job.subjobs]
    async with Engine(gangadir, config=condor_config) as engine:
        again = await engine.get(job_id)
        await engine.wait(again, timeout=90)
        assert again.status is Status.COMPLETED
        assert [s.backend_id for s in again.subjobs] == natives
        assert [(s.outputdir / "stdout").read_text() for s in again.subjobs] == ["ok 0\n", "ok 1\n", "ok 2\n"]
