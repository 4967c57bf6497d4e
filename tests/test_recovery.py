"""kill -9 of the engine's process during submission, then a restart: nothing is lost and
nothing runs twice."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from ganga_async import ArgSplitter, Config, Engine, Executable, Job, Local, Status

N = 120

SUBMITTER = textwrap.dedent("""
    import sys, anyio
    from ganga_async import Engine, Job, Executable, ArgSplitter, Local, load_config
    gangadir, ledger = sys.argv[1], sys.argv[2]
    async def main():
        config = load_config()
        config["Repository"]["flush_interval"] = 0.01
        async with Engine(gangadir, config=config) as engine:
            job = Job(application=Executable(exe="/bin/sh"), backend=Local(max_concurrent=4),
                      splitter=ArgSplitter(args=[["-c", f"echo {i} >> {ledger}; sleep 0.05"]
                                                 for i in range({n})]))
            print("submitting", flush=True)
            await engine.submit(job)
            print("accepted", flush=True)
            await anyio.sleep_forever()
    anyio.run(main)
""").replace("{n}", str(N))


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("after", ["submitting", "accepted"])
def test_kill_9_during_submission_then_restart_loses_nothing_and_runs_nothing_twice(
    gangadir: Path, config: Config, tmp_path: Path, after: str, delay: float
) -> None:
    ledger = tmp_path / "ledger"
    proc = subprocess.Popen([sys.executable, "-c", SUBMITTER, str(gangadir), str(ledger)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        if line.strip() == after or time.monotonic() > deadline:
            break
    time.sleep(delay)
    proc.kill()
    proc.wait()
    proc.stdout.close()

    async def resume() -> list[Status]:
        async with Engine(gangadir, config=config) as engine:
            jobs = await engine.jobs()
            for job in jobs:
                if job.status is not Status.NEW:
                    await engine.wait(job, timeout=60)
            return [job.status for job in jobs]

    statuses = anyio.run(resume, backend="asyncio")
    if statuses in ([], [Status.NEW]):
        assert after == "submitting", "an accepted job was lost"
        assert not ledger.exists(), "a job that was never accepted ran"
        return
    assert statuses == [Status.COMPLETED], _reasons(gangadir, config)
    ran = sorted(int(x) for x in ledger.read_text().split())
    assert ran == list(range(N)), "a subjob ran twice or never"


def _reasons(gangadir: Path, config: Config) -> dict[str, str | None]:
    async def read() -> dict[str, str | None]:
        async with Engine(gangadir, config=config, monitoring=False) as engine:
            return {s.fqid: s.reason for j in await engine.jobs() for s in j.subjobs
                    if s.status is not Status.COMPLETED}
    return anyio.run(read, backend="asyncio")


@pytest.mark.anyio
async def test_subjobs_recorded_as_submitting_that_their_backend_finished_complete_after_a_restart(
    gangadir: Path, config: Config
) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/echo"), backend=Local(),
                  splitter=ArgSplitter(args=[["a"], ["b"]]))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        path = engine.repository.path
    # The state a kill -9 leaves when the runner had the subjobs (and ran them) but the engine
    # died before it wrote that they were submitted.
    with sqlite3.connect(path) as db:
        db.execute("UPDATE subjobs SET status = ?, t_submitted = 0, t_running = 0, t_final = 0",
                   (Status.SUBMITTING.code,))
        db.execute("UPDATE jobs SET status = 'submitting'")
    async with Engine(gangadir, config=config) as engine:
        (job,) = await engine.jobs()
        await engine.wait(job, timeout=30)
        assert [s.status for s in job.subjobs] == [Status.COMPLETED, Status.COMPLETED]
        assert all({"submitted", "running", "completed"} <= set(s.time) for s in job.subjobs)
