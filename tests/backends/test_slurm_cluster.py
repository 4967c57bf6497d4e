"""The Slurm backend end to end, against the real one-node cluster of scripts/slurm-up.sh."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from ganga_async import ArgSplitter, Config, Engine, Executable, Job, Slurm, Status

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]


def sh(script: str, **kwargs: object) -> Job:
    return Job(application=Executable(exe="/bin/sh", args=["-c", script]), **kwargs)  # type: ignore[arg-type]


def sh_each(script: str, values: list[str], **kwargs: object) -> Job:
    """One subjob per value, each running ``script`` with the value as ``$1``."""
    return Job(application=Executable(exe="/bin/sh"),
               splitter=ArgSplitter(args=[["-c", script, "sh", v] for v in values]),
               **kwargs)  # type: ignore[arg-type]


def slurm_state(native_id: str) -> str:
    done = subprocess.run(["squeue", "--noheader", "--array", "--states=all", f"--jobs={native_id}",
                           "--format=%i %T"], capture_output=True, text=True, check=True)
    states = dict(line.split() for line in done.stdout.splitlines())
    return states[native_id]


async def peek(engine: Engine, job: Job) -> str:
    """The job's stdout so far ("" before the wrapper created it)."""
    try:
        return await engine.peek(job)
    except FileNotFoundError:
        return ""


async def until(engine: Engine, job: Job, status: Status, seconds: float = 60) -> None:
    """Wait, on the engine's events, until ``job`` is in ``status``."""
    async with engine.events() as events:
        if job.status is status:
            return
        with anyio.fail_after(seconds):
            async for event in events:
                if event.fqid == job.fqid and event.new is status:
                    return


async def test_a_200_subjob_master_is_one_array_and_completes_with_outputs(
    gangadir: Path, slurm_config: Config
) -> None:
    async with Engine(gangadir, config=slurm_config) as engine:
        job = sh_each('echo "result $1" > out.txt; echo "hello $1"', [str(i) for i in range(200)],
                      backend=Slurm(partition="debug", time="10", max_running=50),
                      outputfiles=["*.txt"])
        await engine.submit(job)
        await engine.wait(job, timeout=150)
        assert job.status is Status.COMPLETED, job.subjobs.counts()
        arrays = {s.backend_id.partition("_")[0] for s in job.subjobs if s.backend_id}
        assert len(arrays) == 1
        (array,) = arrays
        last = job.subjobs[199]
        assert last.backend_id == f"{array}_199"
        assert (last.outputdir / "stdout").read_text() == "hello 199\n"
        assert (last.outputdir / "out.txt").read_text() == "result 199\n"
        assert last.exitcode == 0
        record = json.loads((last.outputdir / "__jobstatus__.json").read_text())
        assert record["batch_id"] == f"{array}_199"
        assert record["exitcode"] == 0 and record["end"] >= record["start"]
        assert set(last.time) >= {"submitted", "running", "completed"}
        folder = job.outputdir.parent / "slurm"
        assert len(list(folder.glob("*.jsonl"))) == 1
        assert len((next(folder.glob("*.jsonl"))).read_text().splitlines()) == 200


async def test_a_failing_task_fails_its_subjob_and_resubmit_makes_a_new_array_of_it(
    gangadir: Path, slurm_config: Config, tmp_path: Path
) -> None:
    marker = tmp_path / "second-time"
    async with Engine(gangadir, config=slurm_config) as engine:
        job = sh_each(f'[ "$1" != 1 ] || [ -e {marker} ] || exit 3; echo ok $1', ["0", "1", "2"],
                      backend=Slurm())
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.FAILED
        failed = job.subjobs[1]
        assert (failed.status, failed.exitcode, failed.reason) == (Status.FAILED, 3, "exit code 3")
        assert job.subjobs[0].status is job.subjobs[2].status is Status.COMPLETED
        first_array = failed.backend_id.partition("_")[0]

        marker.touch()
        await engine.resubmit(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.COMPLETED
        assert (failed.outputdir / "stdout").read_text() == "ok 1\n"
        assert failed.info.submit_counter == 2
        assert failed.backend_id.partition("_")[0] != first_array
        assert job.subjobs[0].backend_id.partition("_")[0] == first_array


async def test_a_job_cancelled_with_scancel_is_killed_and_peek_reads_it_while_it_runs(
    gangadir: Path, slurm_config: Config
) -> None:
    async with Engine(gangadir, config=slurm_config) as engine:
        job = sh("echo started; exec sleep 120", backend=Slurm())
        await engine.submit(job)
        await until(engine, job, Status.RUNNING)
        for _ in range(100):  # the file another process writes: nothing to wait on but the file
            if "started" in await peek(engine, job):
                break
            await anyio.sleep(0.2)
        assert await peek(engine, job) == "started\n"
        assert job.backend_id and "_" not in job.backend_id
        await anyio.run_process(["scancel", job.backend_id])
        await engine.wait(job, timeout=30)
        assert job.status is Status.KILLED
        assert job.reason == "cancelled in Slurm (scancel)"


async def test_kill_through_the_engine_cancels_the_array_with_one_scancel(
    gangadir: Path, slurm_config: Config
) -> None:
    async with Engine(gangadir, config=slurm_config) as engine:
        job = sh_each("exec sleep 120", ["a", "b", "c"], backend=Slurm())
        await engine.submit(job)
        await until(engine, job.subjobs[0], Status.RUNNING)
        await engine.kill(job)
        await engine.wait(job, timeout=30)
        assert job.status is Status.KILLED
        assert {s.reason for s in job.subjobs} == {"killed"}
        assert {slurm_state(s.backend_id) for s in job.subjobs} == {"CANCELLED"}


async def test_a_slurmctld_restart_in_the_middle_of_a_run_loses_no_job(
    gangadir: Path, slurm_config: Config, slurm_script: Callable[..., str]
) -> None:
    slurm_config["Slurm"]["command_timeout"] = 10.0
    async with Engine(gangadir, config=slurm_config) as engine:
        running = sh_each("sleep 6; echo done $1", [str(i) for i in range(6)], backend=Slurm())
        await engine.submit(running)
        await until(engine, running.subjobs[0], Status.RUNNING)
        await anyio.to_thread.run_sync(slurm_script, "slurm-down.sh", "slurmctld")
        try:
            late = sh("echo late", backend=Slurm())
            await engine.submit(late)
            await anyio.sleep(2)
            assert late.status is Status.SUBMITTING
        finally:
            await anyio.to_thread.run_sync(slurm_script, "slurm-up.sh")
        await engine.wait(running, timeout=90)
        await engine.wait(late, timeout=60)
        assert running.status is Status.COMPLETED, running.subjobs.counts()
        assert (running.subjobs[5].outputdir / "stdout").read_text() == "done 5\n"
        assert late.status is Status.COMPLETED
        assert (late.outputdir / "stdout").read_text() == "late\n"


async def test_a_restarted_engine_picks_up_its_slurm_jobs(gangadir: Path, slurm_config: Config) -> None:
    async with Engine(gangadir, config=slurm_config) as engine:
        job = sh_each("sleep 3; echo back $1", ["0", "1", "2", "3"], backend=Slurm())
        await engine.submit(job)
        await until(engine, job, Status.SUBMITTED)
        job_id, ids = job.id, [s.backend_id for s in job.subjobs]
    async with Engine(gangadir, config=slurm_config) as engine:
        again = await engine.get(job_id)  # type: ignore[arg-type]
        await engine.wait(again, timeout=60)
        assert again.status is Status.COMPLETED
        assert [s.backend_id for s in again.subjobs] == ids
        assert (again.subjobs[3].outputdir / "stdout").read_text() == "back 3\n"


@pytest.mark.parametrize(("settings", "message"), [
    ({"partition": "nosuchpartition"}, "Invalid partition name specified"),
    ({"time": "banana"}, "Invalid --time specification"),
])
async def test_a_submission_slurm_refuses_fails_with_slurms_own_message(
    gangadir: Path, slurm_config: Config, settings: dict[str, str], message: str
) -> None:
    async with Engine(gangadir, config=slurm_config) as engine:
        job = sh("true", backend=Slurm(**settings))  # type: ignore[arg-type]
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert job.status is Status.FAILED
        assert job.reason is not None and message in job.reason
