"""The Dask backend end to end on a real LocalCluster that the engine starts and owns."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from _dask_helpers import dask_config, require_distributed, sh, started, until

from ganga_async import ArgSplitter, Config, Dask, Engine, Executable, Job, JobSpecError, Status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

require_distributed()


async def test_a_split_job_is_one_submission_of_keyed_tasks_with_outputs(
    gangadir: Path, config: Config
) -> None:
    async with Engine(gangadir, config=dask_config(config)) as engine:
        job = Job(application=Executable(exe="/bin/sh"),
                  splitter=ArgSplitter(args=[["-c", 'echo "r $1" > out.txt; echo "hello $1"', "sh", str(i)]
                                             for i in range(6)]),
                  backend=Dask(), outputfiles=["*.txt"])
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.COMPLETED, job.subjobs.counts()
        last = job.subjobs[5]
        assert last.backend_id == f"ganga-{last.fqid}-0"
        assert (last.outputdir / "stdout").read_text() == "hello 5\n"
        assert (last.outputdir / "out.txt").read_text() == "r 5\n"
        record = json.loads((last.outputdir / "__jobstatus__.json").read_text())
        assert record["exitcode"] == 0 and record["end"] >= record["start"]
        manifests = list((job.outputdir.parent / "dask").glob("*.jsonl"))
        assert len(manifests) == 1 and len(manifests[0].read_text().splitlines()) == 6


async def test_a_failing_command_fails_with_its_exit_code_and_resubmission_takes_a_new_key(
    gangadir: Path, config: Config
) -> None:
    async with Engine(gangadir, config=dask_config(config)) as engine:
        job = sh("echo try >> $0; exit 3", backend=Dask(max_running=1))
        job.application.args.append(str(gangadir / "tries"))  # type: ignore[attr-defined]
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.FAILED and job.exitcode == 3
        assert "exit code 3" in (job.reason or "")
        await engine.resubmit(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.FAILED
        assert job.backend_id == f"ganga-{job.fqid}-2"
        assert (gangadir / "tries").read_text() == "try\ntry\n"


async def test_kill_reaches_the_running_process_and_records_killed(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=dask_config(config)) as engine:
        job = sh("echo started; exec sleep 60", backend=Dask())
        await engine.submit(job)
        await until(engine, job, Status.RUNNING, 60)
        await started(engine, job)
        await engine.kill(job)
        await engine.wait(job, timeout=20)
        assert job.status is Status.KILLED
        record = json.loads((job.outputdir / "__jobstatus__.json").read_text())
        assert record["killed"] is True and record["exitcode"] == -15


async def test_max_running_caps_the_tasks_in_the_cluster_at_once(gangadir: Path, config: Config) -> None:
    """Longer than lost_after: tasks held back are never taken for tasks the scheduler lost."""
    async with Engine(gangadir, config=dask_config(config)) as engine:
        job = Job(application=Executable(exe="/bin/sh"),
                  splitter=ArgSplitter(args=[["-c", f"date +%s.%N > {gangadir}/s$1; sleep 1.6; date +%s.%N > "
                                              f"{gangadir}/e$1", "sh", str(i)] for i in range(3)]),
                  backend=Dask(max_running=1))
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.COMPLETED
        spans = sorted((float((gangadir / f"s{i}").read_text()), float((gangadir / f"e{i}").read_text()))
                       for i in range(3))
        assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


async def test_an_unreachable_scheduler_fails_the_job_at_submit_with_the_reason(
    gangadir: Path, config: Config
) -> None:
    config = dask_config(config)
    config["Dask"]["connect_timeout"] = 1.0
    async with Engine(gangadir, config=config) as engine:
        job = sh("echo never", backend=Dask(address="tcp://127.0.0.1:9"))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert job.status is Status.FAILED
        assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in (job.reason or "")


async def test_a_bad_address_is_refused_naming_the_field(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=dask_config(config)) as engine:
        with pytest.raises(JobSpecError, match=r"backend.address: 'host:8786' is not a Dask scheduler"):
            await engine.submit(sh("true", backend=Dask(address="host:8786")))


async def test_tasks_of_a_local_cluster_closed_with_the_engine_end_or_run_once_after_a_restart(
    gangadir: Path, config: Config
) -> None:
    runs = gangadir / "runs"
    async with Engine(gangadir, config=dask_config(config)) as engine:
        job = Job(application=Executable(exe="/bin/sh"),
                  splitter=ArgSplitter(args=[["-c", f"echo $1 >> {runs}; sleep 1", "sh", str(i)]
                                             for i in range(4)]),
                  backend=Dask())
        await engine.submit(job)
        fqid = job.fqid
    async with Engine(gangadir, config=dask_config(config)) as engine:
        job = await engine.get(fqid)
        await engine.wait(job, timeout=60)
        counts = job.subjobs.counts()
        assert all(s.status in (Status.COMPLETED, Status.FAILED) for s in job.subjobs), counts
        assert all("Dask worker" in (s.reason or "") for s in job.subjobs if s.status is Status.FAILED)
        ran = runs.read_text().splitlines()
        assert len(ran) == len(set(ran))


async def test_kill_ends_running_and_held_back_subjobs_and_none_starts_afterwards(
    gangadir: Path, config: Config
) -> None:
    runs = gangadir / "runs"
    async with Engine(gangadir, config=dask_config(config)) as engine:
        job = Job(application=Executable(exe="/bin/sh"),
                  splitter=ArgSplitter(args=[["-c", f"echo $1 >> {runs}; echo started; exec sleep 60", "sh",
                                              str(i)] for i in range(3)]),
                  backend=Dask(max_running=1))
        await engine.submit(job)
        await until(engine, job.subjobs[0], Status.RUNNING, 60)
        await started(engine, job.subjobs[0])
        await engine.kill(job)
        await engine.wait(job, timeout=30)
        assert [s.status for s in job.subjobs] == [Status.KILLED] * 3
        await anyio.sleep(1)
        assert runs.read_text() == "0\n"
