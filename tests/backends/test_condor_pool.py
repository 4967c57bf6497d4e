"""The Condor backend end to end, against the real single-node pool of scripts/condor-up.sh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from _service_helpers import cli

from ganga_async import ArgSplitter, Condor, Config, Engine, Executable, Job, Status

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("condor_pool")]


def sh(script: str, **kwargs: object) -> Job:
    return Job(application=Executable(exe="/bin/sh", args=["-c", script]), **kwargs)  # type: ignore[arg-type]


def sh_each(script: str, values: list[str], **kwargs: object) -> Job:
    """One subjob per value, each running ``script`` with the value as ``$1``."""
    return Job(application=Executable(exe="/bin/sh"),
               splitter=ArgSplitter(args=[["-c", script, "sh", v] for v in values]),
               **kwargs)  # type: ignore[arg-type]


async def until(engine: Engine, job: Job, status: Status, seconds: float = 60) -> None:
    """Wait, on the engine's events, until ``job`` is in ``status``."""
    async with engine.events() as events:
        if job.status is status:
            return
        with anyio.fail_after(seconds):
            async for event in events:
                if event.fqid == job.fqid and event.new is status:
                    return


@pytest.mark.anyio
async def test_a_200_subjob_master_is_one_cluster_with_outputs_and_a_failing_proc_fails_its_subjob(
    gangadir: Path, condor_config: Config
) -> None:
    async with Engine(gangadir, config=condor_config) as engine:
        job = sh_each('[ "$1" != 17 ] || exit 3; echo "result $1" > out.txt; echo "hello $1"',
                      [str(i) for i in range(200)],
                      backend=Condor(request_memory="64", requirements="TARGET.Cpus >= 1", max_running=50),
                      outputfiles=["*.txt"])
        await engine.submit(job)
        await engine.wait(job, timeout=240)
        assert job.status is Status.FAILED, job.subjobs.counts()
        clusters = {s.backend_id.partition(".")[0] for s in job.subjobs if s.backend_id}
        assert len(clusters) == 1
        (cluster,) = clusters
        last = job.subjobs[199]
        assert last.backend_id == f"{cluster}.199"
        assert (last.outputdir / "stdout").read_text() == "hello 199\n"
        assert (last.outputdir / "out.txt").read_text() == "result 199\n"
        record = json.loads((last.outputdir / "__jobstatus__.json").read_text())
        assert record["exitcode"] == 0 and record["end"] >= record["start"]
        assert set(last.time) >= {"submitted", "running", "completed"}
        failed = job.subjobs[17]
        assert (failed.status, failed.exitcode, failed.reason) == (Status.FAILED, 3, "exit code 3")
        assert job.subjobs.counts()["completed"] == 199
        folder = job.outputdir.parent / "condor"
        assert len(list(folder.glob("*.jsonl"))) == 1


@pytest.mark.anyio
async def test_a_job_removed_with_condor_rm_is_killed_with_htcondors_word(
    gangadir: Path, condor_config: Config, condor_cli: Callable[..., str]
) -> None:
    async with Engine(gangadir, config=condor_config) as engine:
        job = sh("exec sleep 120", backend=Condor())
        await engine.submit(job)
        await until(engine, job, Status.RUNNING)
        assert job.backend_id and job.backend_id.endswith(".0")
        condor_cli("condor_rm", job.backend_id)
        await engine.wait(job, timeout=60)
        assert job.status is Status.KILLED
        assert job.reason is not None and job.reason.startswith("removed in HTCondor")


@pytest.mark.anyio
async def test_a_held_proc_is_held_with_its_reason_and_runs_once_released(
    gangadir: Path, condor_config: Config, condor_cli: Callable[..., str]
) -> None:
    async with Engine(gangadir, config=condor_config) as engine:
        job = sh_each('echo "done $1"', ["0", "1"],
                      backend=Condor(extra_submit={"hold": "true"}))
        await engine.submit(job)
        await until(engine, job, Status.HELD)
        held = job.subjobs[1]
        assert held.status is Status.HELD
        assert held.reason is not None and held.reason.startswith("held by HTCondor: ")
        condor_cli("condor_qedit", held.backend_id, "HoldReason", '"waiting for the test"')
        await engine.release(job.subjobs[0])
        await until(engine, job.subjobs[0], Status.COMPLETED)
        await anyio.sleep(1.5)  # a few sweeps: the qedit'd reason is news for the held proc
        assert held.status is Status.HELD
        assert held.reason == "held by HTCondor: waiting for the test"
        await engine.release(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.COMPLETED
        assert (held.outputdir / "stdout").read_text() == "done 1\n"


@pytest.mark.anyio
async def test_kill_through_the_engine_removes_the_whole_cluster_in_one_action(
    gangadir: Path, condor_config: Config
) -> None:
    async with Engine(gangadir, config=condor_config) as engine:
        job = sh_each("echo started; exec sleep 120", ["0", "1", "2"], backend=Condor())
        await engine.submit(job)
        await until(engine, job.subjobs[0], Status.RUNNING)
        await engine.kill(job)
        await engine.wait(job, timeout=60)
        assert [s.status for s in job.subjobs] == [Status.KILLED] * 3
        assert all(s.reason == "killed" for s in job.subjobs)


@pytest.mark.anyio
async def test_a_job_held_while_no_engine_runs_is_released_from_the_command_line(
    gangadir: Path, condor_config: Config
) -> None:
    async with Engine(gangadir, config=condor_config) as engine:
        job = sh("echo released", backend=Condor(extra_submit={"hold": "true"}))
        await engine.submit(job)
        await until(engine, job, Status.HELD)
    released = cli("release", "0", "--gangadir", str(gangadir))
    assert released.returncode == 0, released.stderr
    assert released.stdout.startswith("release of job 0 requested")
    async with Engine(gangadir, config=condor_config) as engine:
        job = await engine.get(0)
        await engine.wait(job, timeout=60)
        assert job.status is Status.COMPLETED and job.reason is None
        assert await engine.peek(job) == "released\n"


def test_j_backend_release_releases_a_held_job_as_in_ganga(gangadir: Path) -> None:
    script = textwrap.dedent("""
        from ganga_async.gpi import *
        import time
        config["Condor"]["poll_min"] = 0.3
        config["Condor"]["poll_max"] = 1.0
        j = Job(application=Executable(exe="/bin/echo", args=["hi"]),
                backend=Condor(extra_submit={"hold": "true"}))
        j.submit()
        deadline = time.time() + 60
        while j.status != "held" and time.time() < deadline:
            time.sleep(0.2)
        print(j.status, j.reason)
        j.backend.release()
        j.wait(timeout=60)
        print(j.status)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    held, final = done.stdout.splitlines()
    assert held.startswith("held held by HTCondor: ")
    assert final == "completed"


@pytest.mark.anyio
async def test_the_command_line_tools_serve_where_the_bindings_are_missing(
    gangadir: Path, condor_config: Config, condor_pool: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{condor_pool['HTCONDOR_BIN']}:{os.environ['PATH']}")
    condor_config["Condor"]["client"] = "commands"
    async with Engine(gangadir, config=condor_config) as engine:
        job = sh_each('[ "$1" != 2 ] || exit 5; echo "hello $1"', ["0", "1", "2"], backend=Condor())
        held = sh("echo held-then-run", backend=Condor(extra_submit={"hold": "true"}))
        await engine.submit(job)
        await engine.submit(held)
        await until(engine, held, Status.HELD)
        assert held.reason is not None and held.reason.startswith("held by HTCondor: ")
        await engine.release(held)
        await engine.wait(job, timeout=60)
        await engine.wait(held, timeout=60)
        assert [s.status for s in job.subjobs] == [Status.COMPLETED, Status.COMPLETED, Status.FAILED]
        assert job.subjobs[2].exitcode == 5
        assert (job.subjobs[1].outputdir / "stdout").read_text() == "hello 1\n"
        assert held.status is Status.COMPLETED and held.backend_id.endswith(".0")
