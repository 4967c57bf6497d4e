"""Idempotent submission: a repeat with the same token returns the job the first one made, in the
engine, through the daemon and on the command line, also after a restart; never a second job."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from _service_helpers import cli, running_daemon, service_paths

from ganga_async import ArgSplitter, Config, Engine, Executable, Job, JobNotFoundError, JobSpecError, Local
from ganga_async.service.client import AsyncGangaService


def echo(n: int = 3) -> Job:
    return Job(application=Executable(exe="/bin/echo"), backend=Local(),
               splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))


@pytest.mark.anyio
async def test_a_repeated_token_returns_the_first_job_also_after_a_restart(
    gangadir: Path, config: Config
) -> None:
    async with Engine(gangadir, config=config) as engine:
        first = await engine.submit(echo(), token="t-1")
        again = await engine.submit(echo(), token="t-1")
        assert again is first
        # Repeats under way at once wait for the first: one job in all.
        results: list[Job] = []
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(lambda: _append(results, engine.submit(echo(), token="t-2")))
        assert len({id(j) for j in results}) == 1
        assert [j.id for j in await engine.jobs()] == [0, 1]
        await engine.wait(first, timeout=30)
    async with Engine(gangadir, config=config) as engine:
        after = await engine.submit(echo(), token="t-1")
        assert after.id == first.id
        assert len(await engine.jobs()) == 2
        other = await engine.submit(echo(), token="t-3")
        assert other.id == 2
        await engine.wait(other, timeout=30)
        await engine.remove(other)
        with pytest.raises(JobNotFoundError, match="has been removed; submit with a new token"):
            await engine.submit(echo(), token="t-3")
        for bad in ("", "x" * 201, "a\nb"):
            with pytest.raises(JobSpecError, match="token"):
                await engine.submit(echo(), token=bad)


async def _append(results: list[Job], submitting: object) -> None:
    results.append(await submitting)  # type: ignore[misc]


@pytest.mark.anyio
async def test_a_refused_submission_leaves_its_token_free(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        with pytest.raises(JobSpecError):
            await engine.submit(Job(application=Executable(exe="/no/such/exe")), token="t")
        job = await engine.submit(echo(1), token="t")
        assert job.id == 1


JOB = '[application]\ntype = "Executable"\nexe = "/bin/echo"\nargs = ["hi"]\n'


@pytest.mark.slow
def test_submit_with_the_same_token_gives_the_same_job_in_process_and_through_the_daemon(
    tmp_path: Path, gangadir: Path
) -> None:
    path = tmp_path / "job.toml"
    path.write_text(JOB)
    ids = [json.loads(cli("--json", "submit", str(path), "--token", "abc").stdout)["id"]
           for _ in range(2)]
    assert ids == [0, 0]
    with running_daemon(service_paths(gangadir)):
        served = [json.loads(cli("--json", "submit", str(path), "--token", tok).stdout)["id"]
                  for tok in ("abc", "def", "def")]
        assert served == [0, 1, 1]

        async def through_the_client() -> list[int]:
            async with AsyncGangaService(gangadir, autostart=False) as gs:
                job = {"application": {"type": "Executable", "exe": "/bin/echo"}}
                return [(await gs.submit(job, token="xyz"))["id"] for _ in range(2)]

        assert anyio.run(through_the_client, backend="asyncio") == [2, 2]
        assert len(json.loads(cli("--json", "jobs").stdout)) == 3
