"""The credential gate in a real engine, with Local jobs: held instead of failed, resumed by itself."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from realcreds import make_token, renewals, token_renewer, write_private

from ganga_async import (
    BearerToken,
    Config,
    CredentialEvent,
    Engine,
    Executable,
    Job,
    Local,
    Status,
)
from ganga_async.backends.local import read_status

pytestmark = pytest.mark.anyio


@pytest.fixture
def gated(config: Config) -> Config:
    config["Credentials"]["check_interval"] = 0.2
    config["Credentials"]["renew_margin"] = 0
    config["Credentials"]["min_time_left"] = 60
    return config


def sleeper(seconds: float, token: BearerToken) -> Job:
    return Job(application=Executable(exe="sleep", args=[str(seconds)]), backend=Local(),
               credentials=[token])


async def until(engine: Engine, job: Job, status: Status) -> None:
    """Wait on the engine's events until ``job`` is in ``status`` (20 s at most)."""
    async with engine.events() as events:
        with anyio.fail_after(20):
            if job.status is status:
                return
            async for _ in events:
                if job.status is status:
                    return


async def test_a_job_with_30_s_left_of_a_60_s_minimum_waits_then_runs_after_renewal(
    gangadir: Path, gated: Config, tmp_path: Path
) -> None:
    path = write_private(tmp_path / "token", make_token(30))
    async with Engine(gangadir, config=gated) as engine:
        job = sleeper(0, BearerToken(token_file=str(path)))
        await engine.submit(job)
        await until(engine, job, Status.HELD)
        assert job.reason is not None
        assert "BearerToken token_file=" in job.reason and "s left, 60 s needed" in job.reason
        assert "ganga-async credentials renew" in job.reason
        await engine.credentials.next_sweep()
        assert job.status is Status.HELD
        write_private(path, make_token(3600))
        await engine.wait(job, timeout=20)
        assert job.status is Status.COMPLETED
        assert job.reason is None


async def test_200_jobs_blocked_on_one_credential_trigger_exactly_one_renewal(
    gangadir: Path, gated: Config, tmp_path: Path
) -> None:
    path = write_private(tmp_path / "token", make_token(10))
    count = tmp_path / "count"
    renew = token_renewer(path, 3600, count, delay=1.0)
    async with Engine(gangadir, config=gated) as engine:
        jobs = [Job(application=Executable(exe="true"), backend=Local(),
                    credentials=[BearerToken(token_file=str(path), renew_command=renew)])
                for _ in range(200)]
        async with anyio.create_task_group() as tg:
            for job in jobs:
                tg.start_soon(engine.submit, job)
        for job in jobs:
            await engine.wait(job, timeout=60)
        assert renewals(count) == 1
        assert {job.status for job in jobs} == {Status.COMPLETED}
        assert sum(job.time.get("held") is not None for job in jobs) >= 1


async def test_an_expiry_during_monitoring_fails_nothing(
    gangadir: Path, gated: Config, tmp_path: Path
) -> None:
    gated["Credentials"]["min_time_left"] = 1
    path = write_private(tmp_path / "token", make_token(4))
    async with Engine(gangadir, config=gated) as engine:
        warnings = engine.credential_events()
        job = sleeper(5, BearerToken(token_file=str(path)))
        await engine.submit(job)
        await until(engine, job, Status.RUNNING)
        with anyio.fail_after(20):
            # the runner's status log is the only sign the process ended; nothing to wait on
            while "exitcode" not in (read_status(job.fqid, job.outputdir) or {}):  # noqa: ASYNC110
                await anyio.sleep(0.2)
        for _ in range(3):
            await engine.credentials.next_sweep()
        assert job.status is Status.RUNNING  # its last status: monitoring is paused, not failing
        write_private(path, make_token(3600))
        await engine.wait(job, timeout=20)
        assert job.status is Status.COMPLETED
        kinds = set()
        with anyio.move_on_after(1):
            async for event in warnings:
                assert isinstance(event, CredentialEvent)
                kinds.add(event.kind)
        assert "expired" in kinds or "renewal_failed" in kinds
        warnings.close()


async def test_held_jobs_survive_an_engine_restart(gangadir: Path, gated: Config, tmp_path: Path) -> None:
    path = write_private(tmp_path / "token", make_token(20))
    async with Engine(gangadir, config=gated) as engine:
        job = sleeper(0, BearerToken(token_file=str(path)))
        await engine.submit(job)
        await until(engine, job, Status.HELD)
        job_id = job.id
    async with Engine(gangadir, config=gated) as engine:
        again = await engine.get(job_id)  # type: ignore[arg-type]
        assert again.status is Status.HELD
        assert again.credentials == [BearerToken(token_file=str(path))]
        write_private(path, make_token(3600))
        await engine.wait(again, timeout=20)
        assert again.status is Status.COMPLETED


async def test_a_held_job_can_be_killed(gangadir: Path, gated: Config, tmp_path: Path) -> None:
    path = write_private(tmp_path / "token", make_token(20))
    async with Engine(gangadir, config=gated) as engine:
        job = sleeper(0, BearerToken(token_file=str(path)))
        await engine.submit(job)
        await until(engine, job, Status.HELD)
        await engine.kill(job)
        assert job.status is Status.KILLED
        write_private(path, make_token(3600))
        await engine.credentials.next_sweep()
        await engine.credentials.next_sweep()
        assert job.status is Status.KILLED


async def test_configured_defaults_hold_the_jobs_of_their_backend(
    gangadir: Path, gated: Config, tmp_path: Path
) -> None:
    path = write_private(tmp_path / "token", make_token(20))
    gated["Credentials"]["defaults"] = {
        "site-token": {"type": "BearerToken", "token_file": str(path), "backends": ["Local"]},
    }
    async with Engine(gangadir, config=gated) as engine:
        job = Job(application=Executable(exe="true"), backend=Local())
        await engine.submit(job)
        await until(engine, job, Status.HELD)
        assert job.reason is not None and "BearerToken" in job.reason
        gated["Credentials"]["min_time_left_by_backend"] = {"Local": "10s"}
        write_private(path, make_token(3600))
        await engine.wait(job, timeout=20)
        assert job.status is Status.COMPLETED


async def test_a_job_given_a_removed_jobs_id_is_gated_on_its_own_credentials(
    gangadir: Path, gated: Config, tmp_path: Path
) -> None:
    good = write_private(tmp_path / "good", make_token(3600))
    short = write_private(tmp_path / "short", make_token(20))
    async with Engine(gangadir, config=gated) as engine:
        first = sleeper(0, BearerToken(token_file=str(good)))
        await engine.submit(first)
        await engine.wait(first, timeout=20)
        first_id = first.id
        await engine.remove(first)
        second = sleeper(0, BearerToken(token_file=str(short)))
        await engine.submit(second)
        assert second.id == first_id + 1  # a removed job's id is never given again
        await until(engine, second, Status.HELD)
        assert second.reason is not None and "short" in second.reason
