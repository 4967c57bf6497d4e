"""What another user of the machine can do to a gangadir, tried as a real second user (made with
useradd, acting through runuser): read nothing in it (job environments with secrets, outputs, the
repository), and plant nothing that the engine or the daemon would follow. Root only (CI runs as
root); elsewhere these skip, saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from _service_helpers import cli

from ganga_async import Config, Engine, Executable, Job, Local, RepositoryError, Status

pytestmark = pytest.mark.slow


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A world-writable sticky directory in /tmp (as /tmp is) that the other user can reach."""
    path = Path(tempfile.mkdtemp(prefix="ganga-async-shared-", dir="/tmp"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_user(user: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", *argv], capture_output=True, text=True,
                          timeout=30, check=False)


def test_another_user_can_read_nothing_in_the_gangadir(
    other_user: str, shared_dir: Path, config: Config
) -> None:
    gangadir = shared_dir / "gangadir"

    async def run_a_job_with_a_secret() -> None:
        async with Engine(gangadir, config=config) as engine:
            job = Job(application=Executable(exe="/bin/sh", args=["-c", 'echo "key=$API_KEY"'],
                                             env={"API_KEY": "s3cr3t-key"}), backend=Local())
            await engine.submit(job)
            await engine.wait(job, timeout=30)
            assert job.status is Status.COMPLETED

    anyio.run(run_a_job_with_a_secret, backend="asyncio")
    files = [p for p in gangadir.rglob("*") if p.is_file()]
    holding = [p for p in files if b"s3cr3t-key" in p.read_bytes()]
    assert holding, "the secret is nowhere in the gangadir: the test checks nothing"
    assert as_user(other_user, "ls", str(gangadir)).returncode != 0
    for path in holding + [p for p in files if p.suffix == ".sqlite"]:
        tried = as_user(other_user, "cat", str(path))
        assert tried.returncode != 0 and "Permission denied" in tried.stderr, path
        assert "s3cr3t" not in tried.stdout


def test_a_gangadir_another_user_planted_is_refused_and_its_symlinks_never_followed(
    other_user: str, shared_dir: Path, tmp_path: Path, config: Config
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    planted = shared_dir / "gangadir"
    for argv in (["mkdir", "-p", str(planted / "logs"), str(planted / "repository")],
                 ["ln", "-s", str(victim), str(planted / "logs" / "service.log")],
                 ["ln", "-s", str(victim), str(planted / "repository" / "root")],
                 ["chmod", "-R", "a+rwx", str(planted)],
                 ["ln", "-s", str(planted), str(shared_dir / "link")]):
        assert as_user(other_user, *argv).returncode == 0, argv

    for gangadir in (planted, shared_dir / "link"):
        started = cli("--gangadir", str(gangadir), "service", "start", timeout=60)
        assert started.returncode != 0
        assert "belongs to uid" in started.stderr and "a gangadir must be its owner's alone" in started.stderr
        submitted = cli("--gangadir", str(gangadir), "jobs")
        assert submitted.returncode == 2 and "belongs to uid" in submitted.stderr

        async def open_engine(where: Path = gangadir) -> None:
            async with Engine(where, config=config):
                pass

        with pytest.raises(RepositoryError, match="belongs to uid"):
            anyio.run(open_engine, backend="asyncio")
    assert victim.read_text() == "mine\n"
    ours = [p for p in planted.rglob("*") if p.lstat().st_uid == os.getuid()]
    assert not ours, f"written into another user's directory: {ours}"
