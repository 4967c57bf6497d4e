"""The Dask backend against a ``dask scheduler`` and ``dask worker`` started as processes here
(by pid, stopped by pid): a worker killed with -9, engine restarts, a scheduler restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from _dask_helpers import dask_config, require_distributed, sh, started, until

from ganga_async import ArgSplitter, Config, Dask, Engine, Executable, Job, Status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

require_distributed()
DASK = Path(sys.executable).parent / "dask"


class Cluster:
    """One scheduler and its workers, each a process of this test, ended by its pid."""

    def __init__(self, tmp: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _spawn(self, *argv: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{argv[0]}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
        with log:
            return subprocess.Popen([str(DASK), *argv], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)

    def start_scheduler(self) -> None:
        self.scheduler = self._spawn("scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                     "--no-dashboard")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError("the dask scheduler did not listen within 30 s")

    def start_worker(self) -> subprocess.Popen[bytes]:
        """A worker of one thread, without a nanny: its pid is the worker's."""
        worker = self._spawn("worker", self.address, "--nthreads", "1", "--no-dashboard", "--no-nanny",
                             "--death-timeout", "60")
        self.workers.append(worker)
        return worker

    def stop(self, process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
        if process is not None and process.poll() is None:
            os.kill(process.pid, sig)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(10)

    def close(self) -> None:
        for worker in self.workers:
            self.stop(worker)
        self.stop(self.scheduler)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if not DASK.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{DASK} is missing; with CI=true the Dask tests must run, not skip")
        pytest.skip("the dask command is missing: pip install 'ganga-async[dask]'")
    cluster = Cluster(tmp_path)
    try:
        cluster.start_scheduler()
        yield cluster
    finally:
        cluster.close()


def each(script: str, count: int, **kwargs: object) -> Job:
    return Job(application=Executable(exe="/bin/sh"),
               splitter=ArgSplitter(args=[["-c", script, "sh", str(i)] for i in range(count)]),
               **kwargs)  # type: ignore[arg-type]


async def test_a_worker_killed_with_sigkill_fails_its_subjob_with_a_reason(
    gangadir: Path, config: Config, cluster: Cluster
) -> None:
    async with Engine(gangadir, config=dask_config(config)) as engine:
        cluster.start_worker()
        job = sh("echo started; exec sleep 60", backend=Dask(address=cluster.address))
        await engine.submit(job)
        await until(engine, job, Status.RUNNING, 60)
        await started(engine, job)
        cluster.stop(cluster.workers[0], signal.SIGKILL)
        await engine.wait(job, timeout=30)
        assert job.status is Status.FAILED
        assert "Dask worker" in (job.reason or ""), job.reason


async def test_a_restarted_engine_finds_its_tasks_again_and_none_runs_twice(
    gangadir: Path, config: Config, cluster: Cluster
) -> None:
    runs = gangadir / "runs"
    cluster.start_worker()
    async with Engine(gangadir, config=dask_config(config)) as engine:
        job = each(f"sleep 1; echo run $1 >> {runs}; echo done $1", 3, backend=Dask(address=cluster.address))
        await engine.submit(job)
        fqid = job.fqid
    async with Engine(gangadir, config=dask_config(config)) as engine:
        job = await engine.get(fqid)
        await engine.wait(job, timeout=60)
        assert job.status is Status.COMPLETED, job.subjobs.counts()
        assert sorted(runs.read_text().splitlines()) == ["run 0", "run 1", "run 2"]
        assert (job.subjobs[2].outputdir / "stdout").read_text() == "done 2\n"


async def test_a_scheduler_restart_loses_no_job_and_runs_none_twice(
    gangadir: Path, config: Config, cluster: Cluster
) -> None:
    runs = gangadir / "runs"
    cluster.start_worker()
    async with Engine(gangadir, config=dask_config(config)) as engine:
        job = each(f"echo run $1 >> {runs}; echo started; sleep 2", 3, backend=Dask(address=cluster.address))
        await engine.submit(job)
        await until(engine, job.subjobs[0], Status.RUNNING, 60)
        cluster.stop(cluster.scheduler, signal.SIGKILL)
        await anyio.sleep(1)
        cluster.start_scheduler()
        # Workers close when their scheduler goes (their nanny too): a deployment starts them again.
        cluster.start_worker()
        await engine.wait(job, timeout=90)
        assert all(s.status in (Status.COMPLETED, Status.FAILED) for s in job.subjobs), job.subjobs.counts()
        failed = [s for s in job.subjobs if s.status is Status.FAILED]
        assert all(s.reason for s in failed)
        ran = runs.read_text().splitlines()
        assert len(ran) == len(set(ran))
        assert all(f"run {i}" in ran for i, s in enumerate(job.subjobs) if s.status is Status.COMPLETED)
        again = [s for s in job.subjobs if s.backend_id and s.backend_id.endswith("-1")]
        assert len(again) == 2 and all(s.status is Status.COMPLETED for s in again)
