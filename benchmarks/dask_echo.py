"""Figures of the Dask backend: 1,000 ``/bin/echo`` subjobs on a 2-worker local cluster against
Dask's own ``client.map``, and one monitoring sweep over 1,000 active tasks.

What is measured, interleaved over ``--rounds`` rounds, each variant on its own fresh 2-worker
local cluster (worker processes of one thread: the engine's own ``SubprocessCluster``, a
``LocalCluster`` for ``client.map``; the cluster's start is not timed: a one-task job, or one
task, warms it up first):

- **engine**: ``Job(Executable(exe="/bin/echo"), Dask(), ArgSplitter(args=[[str(i)] ...]))``
  submitted to an open engine; the clock runs from ``await engine.submit(job)`` until the
  master is ``completed``: persisting and splitting, the manifest, one ``client.map`` of
  fire-and-forget tasks each running the job wrapper (a Python interpreter) that runs
  ``/bin/echo`` with its stdout, stderr, status and heartbeat files, and monitoring to the end.
  Afterwards every subjob's stdout is checked.
- **client.map, same wrapper**: Dask's own ``client.map(subprocess.run, ...)`` of exactly the
  subprocess calls the engine makes (the job wrapper on a manifest line that runs
  ``/bin/echo``), gathered: the engine's overhead over Dask for the same work.
- **client.map, bare echo**: ``client.map(subprocess.run, [["/bin/echo", i] ...])`` with the
  output captured in memory, gathered: what a Dask user writes by hand, without the job
  wrapper's files and guarantees.

Then one monitoring sweep (``DaskDriver.sweep``) over ``n`` active tasks that need a resource
no worker offers (so they stay queued): the CPU time of this process (all threads) and its
wall time. The engine's scheduler runs in a process of its own, so its answer to the one
``get_task_status`` call is not in that CPU time.

Run it alone with ``python -m benchmarks.dask_echo [--n 1000] [--rounds 2]``.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from ganga_async import ArgSplitter, Engine, Executable, Job, Status

from ._harness import (
    Row,
    Samples,
    bench_config,
    fmt_s,
    interleave,
    run_main,
    scratch,
)

WORKERS = 2


def _config(root: Path) -> Any:
    config = bench_config(root)
    config["Dask"]["local_workers"] = WORKERS
    return config


def run_engine(root: Path, n: int) -> float:
    from ganga_async.backends.dask import Dask

    async def main() -> float:
        gangadir = root / f"gangadir-{time.monotonic_ns()}"
        async with Engine(gangadir, config=_config(root)) as engine:
            warm = Job(application=Executable(exe="/bin/true"), backend=Dask())
            await engine.submit(warm)
            await engine.wait(warm, timeout=120)
            job = Job(application=Executable(exe="/bin/echo"), backend=Dask(),
                      splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
            started = time.perf_counter()
            await engine.submit(job)
            await engine.wait(job, timeout=900)
            seconds = time.perf_counter() - started
            assert job.status is Status.COMPLETED, job.subjobs.counts()
            assert (job.subjobs[n - 1].outputdir / "stdout").read_text() == f"{n - 1}\n"
        return seconds

    return anyio.run(main, backend="asyncio")


def _wrapper_calls(root: Path, n: int) -> list[list[str]]:
    """The argv the engine's tasks run: the job wrapper on each line of a manifest of echoes."""
    from ganga_async.backends._batch import install_wrapper, write_manifest

    folder = root / f"map-{time.monotonic_ns()}"
    wrapper = folder / "job_wrapper.py"
    install_wrapper(folder, wrapper)
    manifest = folder / "tasks.jsonl"
    write_manifest(manifest, [
        {"task": i, "key": f"0.{i}", "argv": ["/bin/echo", str(i)], "env": {},
         "workdir": str(folder / str(i)), "outputdir": str(folder / str(i)), "inputs": [],
         "outputs": [], "heartbeat": 10.0, "once": True, "watch_parent": True}
        for i in range(n)])
    return [[sys.executable, "-I", "-S", str(wrapper), str(manifest), str(i)] for i in range(n)]


def run_map(root: Path, n: int, *, wrapper: bool) -> float:
    from distributed import Client, LocalCluster

    from ganga_async.backends.dask._driver import NO_DASHBOARD

    async def main() -> float:
        calls = _wrapper_calls(root, n) if wrapper else [["/bin/echo", str(i)] for i in range(n)]
        async with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                                dashboard_address=None, scheduler_kwargs=NO_DASHBOARD,
                                asynchronous=True) as cluster, \
                Client(cluster, asynchronous=True) as client:
            await client.submit(subprocess.run, ["/bin/true"], pure=False)
            started = time.perf_counter()
            futures = client.map(subprocess.run, calls, pure=False, capture_output=True, check=True)
            results = await client.gather(futures)
            seconds = time.perf_counter() - started
        assert len(results) == n and all(r.returncode == 0 for r in results)
        if not wrapper:
            assert results[n - 1].stdout == f"{n - 1}\n".encode()
        return seconds

    return anyio.run(main, backend="asyncio")


def measure_sweep(root: Path, n: int, cpu: Samples, wall: Samples) -> None:
    from ganga_async.backends.dask import Dask
    from ganga_async.backends.dask._driver import DaskDriver

    async def main() -> None:
        async with Engine(root / f"gangadir-{time.monotonic_ns()}", config=_config(root)) as engine:
            job = Job(application=Executable(exe="/bin/true"), backend=Dask(resources={"NOWHERE": 1}),
                      splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
            async with engine.events() as events:
                await engine.submit(job)
                with anyio.fail_after(60):
                    async for _ in events:
                        if job.status is Status.SUBMITTED:
                            break
            await sweep_it(engine, job)

    async def sweep_it(engine: Engine, job: Job) -> None:
        driver = engine._backends.drivers["Dask"]
        assert isinstance(driver, DaskDriver) and job.status is Status.SUBMITTED
        await driver.sweep()
        for _ in range(3):
            started_cpu, started = time.process_time(), time.perf_counter()
            changed = await driver.sweep()
            cpu.values.append(time.process_time() - started_cpu)
            wall.values.append(time.perf_counter() - started)
            assert changed == 0 and len(driver.tracked) == n, (changed, len(driver.tracked))
        await engine.kill(job)

    anyio.run(main, backend="asyncio")


def measure(n: int, rounds: int, tmpdir: str | None) -> list[Row]:
    print(f"dask_echo: {n} /bin/echo subjobs on a {WORKERS}-worker local Dask cluster, against client.map; "
          f"{rounds} rounds")
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("  skipped: distributed is not installed (pip install 'ganga-async[dask]')")
        return [Row("dask_echo", "skipped: no distributed", "-")]
    logging.getLogger("ganga_async").setLevel(logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with scratch(tmpdir, "dask-echo") as root:
        samples = interleave(rounds, {
            "engine": lambda: run_engine(root, n),
            "map, same wrapper": lambda: run_map(root, n, wrapper=True),
            "map, bare echo": lambda: run_map(root, n, wrapper=False),
        })
        cpu, wall = Samples("sweep cpu"), Samples("sweep wall")
        measure_sweep(root, n, cpu, wall)
    engine, same, bare = samples["engine"], samples["map, same wrapper"], samples["map, bare echo"]
    for s in samples.values():
        print(f"  {s.name:<18} {s.summary()}")
    print(f"  engine / map of the same calls: {engine.best / same.best:.2f} best-to-best, "
          f"{engine.median / same.median:.2f} median-to-median; engine / bare echo map: "
          f"{engine.best / bare.best:.1f}")
    print(f"  one sweep over {n} queued tasks: engine CPU {cpu.summary()}; wall {wall.summary()}")
    return [
        Row("dask_echo", f"engine: {n} echo subjobs, submit to completed", fmt_s(engine.best),
            f"{engine.best / same.best:.2f}x client.map of the same calls"),
        Row("dask_echo", "client.map of the same wrapper calls", fmt_s(same.best)),
        Row("dask_echo", "client.map of bare /bin/echo", fmt_s(bare.best),
            f"engine {engine.best / bare.best:.1f}x"),
        Row("dask_echo", f"one sweep over {n} active tasks: engine CPU", fmt_s(cpu.best),
            f"wall {fmt_s(wall.best)}"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return run_main(measure, __doc__, argv, n=1000, rounds=2)


if __name__ == "__main__":
    main()
