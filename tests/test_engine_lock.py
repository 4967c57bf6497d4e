"""One engine at a time works on a gangadir: a second one gets a clear error instead of running
the same subjobs again; engines that only read go on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _service_helpers import cli

from ganga_async import (
    ArgSplitter,
    Config,
    Engine,
    Executable,
    Job,
    Local,
    RepositoryLockedError,
    Status,
)

HOLDER = textwrap.dedent("""
    import sys, anyio
    from ganga_async import Engine, Job, Executable, Local
    async def main():
        async with Engine(sys.argv[1]) as engine:
            job = Job(application=Executable(exe="/bin/sleep", args=["30"]), backend=Local())
            await engine.submit(job)
            print("holding", flush=True)
            await anyio.sleep_forever()
    anyio.run(main)
""")


@pytest.mark.anyio
async def test_a_second_monitoring_engine_on_one_gangadir_is_refused_naming_the_first(
        gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config):
        with pytest.raises(RepositoryLockedError, match=f"another engine \\(pid {os.getpid()}\\)") as caught:
            async with Engine(gangadir, config=config):
                pass
        assert caught.value.pid == os.getpid()
    async with Engine(gangadir, config=config):
        pass  # free again once the first one closed


@pytest.mark.anyio
async def test_a_reading_engine_goes_on_but_cannot_submit_while_another_works(
        gangadir: Path, config: Config) -> None:
    job = Job(application=Executable(exe="/bin/echo"), backend=Local(),
              splitter=ArgSplitter(args=[["a"], ["b"]]))
    async with Engine(gangadir, config=config) as first:
        await first.submit(job)
        await first.wait(job, timeout=30)
        await first.repository.flush()
        async with Engine(gangadir, config=config, monitoring=False) as reader:
            assert [row["status"] for row in await reader.summary()] == ["completed"]
            again = (await reader.get(job.id or 0)).copy()
            with pytest.raises(RepositoryLockedError):
                await reader.submit(again)
            assert again.status is Status.NEW and again.id is None


def test_a_script_holding_the_gangadir_leaves_the_command_line_a_one_line_error(gangadir: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(gangadir)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        # As a user meets it: autostart on, yet no daemon may start beside the script's engine.
        env = {"GANGA_ASYNC_GANGADIR": str(gangadir), "GANGA_ASYNC_SERVICE_AUTOSTART": "true"}
        listed = cli("jobs", env=env)
        assert listed.returncode == 0, listed.stderr
        assert "sleep" in listed.stdout or "Executable" in listed.stdout
        waited = cli("wait", "0", env=env)
        assert waited.returncode == 2
        assert waited.stderr.startswith("error: another engine (pid ")
        assert len(waited.stderr.strip().splitlines()) == 1
        assert not (gangadir / "service").exists() or cli("service", "status", env=env).returncode == 3
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


@pytest.mark.anyio
async def test_the_gangadir_is_made_and_kept_its_owners_alone(tmp_path: Path, config: Config) -> None:
    made, opened = tmp_path / "new" / "gangadir", tmp_path / "open"
    opened.mkdir(mode=0o755)
    opened.chmod(0o755)
    for gangadir in (made, opened):
        async with Engine(gangadir, config=config):
            pass
        assert gangadir.stat().st_mode & 0o777 == 0o700
