"""kill -9 of the engine's process during submission, then a restart: nothing is lost and
nothing runs twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from ganga_async import ArgSplitter, Config, Engine, Executable, Job, Local, Status
from ganga_async.backends.local import _is_runner

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


FROZEN_N = 8

HANDING_OVER = textwrap.dedent("""
    import sys, anyio
    from ganga_async import Engine, Job, Executable, ArgSplitter, Local, Status, load_config
    gangadir, ledger = sys.argv[1], sys.argv[2]
    async def main():
        config = load_config()
        config["Repository"]["flush_interval"] = 0.01
        async with Engine(gangadir, config=config) as engine:
            first = await engine.submit(Job(application=Executable(exe="/bin/true"), backend=Local()))
            await engine.wait(first, timeout=30)
            print("ready", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.readline)
            job = Job(application=Executable(exe="/bin/sh"), backend=Local(max_concurrent=4),
                      splitter=ArgSplitter(args=[["-c", f"echo {i} >> {ledger}"] for i in range({n})]))
            await engine.submit(job)
            while any(s.status is not Status.SUBMITTED for s in job.subjobs):
                await anyio.sleep(0.01)
            print("handed", flush=True)
            await anyio.sleep_forever()
    anyio.run(main)
""").replace("{n}", str(FROZEN_N))


def _hand_over_to_a_frozen_runner(gangadir: Path, ledger: Path) -> int:
    """Run an engine in a child process, freeze its Local runner (SIGSTOP), have the engine send
    it a job's commands (they stay unread in the runner's socket buffer), and kill -9 the engine.
    Returns the frozen runner's pid."""
    proc = subprocess.Popen([sys.executable, "-c", HANDING_OVER, str(gangadir), str(ledger)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        (marker,) = gangadir.rglob("runner-*.reading")
        runner = int(marker.name.removeprefix("runner-").removesuffix(".reading"))
        os.kill(runner, signal.SIGSTOP)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "handed"
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    return runner


def _ledger(ledger: Path) -> list[int]:
    return sorted(int(x) for x in ledger.read_text().split()) if ledger.exists() else []


def test_commands_an_old_runner_has_not_read_are_not_resubmitted_while_it_lives(
    gangadir: Path, config: Config, tmp_path: Path
) -> None:
    """The at-most-once race: the engine is killed -9 right after sending commands its runner
    (slow under load; here frozen) has not read yet. The restarted engine finds no record of
    them, but must not submit them again while that runner lives: it reads and runs them."""
    ledger = tmp_path / "ledger"
    runner = _hand_over_to_a_frozen_runner(gangadir, ledger)

    async def resume() -> Status:
        async with Engine(gangadir, config=config) as engine:
            job = max(await engine.jobs(), key=lambda j: j.id or 0)
            await anyio.sleep(4 * config["Monitoring"]["poll_interval"])
            assert not ledger.exists(), "submitted again while the runner holding it lived"
            os.kill(runner, signal.SIGCONT)
            await engine.wait(job, timeout=60)
            return job.status

    try:
        status = anyio.run(resume, backend="asyncio")
    except BaseException:
        if _is_runner(runner):
            os.kill(runner, signal.SIGKILL)  # maybe frozen still: it would never end by itself
        raise
    assert status is Status.COMPLETED, _reasons(gangadir, config)
    assert _ledger(ledger) == list(range(FROZEN_N)), "a subjob ran twice or never"


def test_commands_a_killed_runner_never_read_are_submitted_again_and_run_once(
    gangadir: Path, config: Config, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    runner = _hand_over_to_a_frozen_runner(gangadir, ledger)
    os.kill(runner, signal.SIGKILL)  # its unread commands are never run

    async def resume() -> Status:
        async with Engine(gangadir, config=config) as engine:
            job = max(await engine.jobs(), key=lambda j: j.id or 0)
            await engine.wait(job, timeout=60)
            return job.status

    assert anyio.run(resume, backend="asyncio") is Status.COMPLETED
    assert _ledger(ledger) == list(range(FROZEN_N)), "a subjob ran twice or never"
    assert not list(gangadir.rglob(f"runner-{runner}.reading")), "the stale marker stays"
