"""Issue 20, figure 3: one monitoring sweep over 100,000 active subjobs on one backend.

A master of ``n`` subjobs is submitted to ``NullQueue`` (``benchmarks/_null_backend.py``), a
queue that runs nothing and holds every unit ``submitted``; its driver answers each sweep with
one query giving the status of every unit at once, as one ``squeue`` does, and never sweeps by
itself. Once every subjob is ``submitted`` and written, the benchmark asks the engine's monitor
for a sweep (``Cadence.now()``, what a resumed monitor does) twice:

- **quiet**: nothing changed: the query answers ``submitted`` for all, the driver finds no
  news. The window ends when the sweep has returned;
- **all running**: the queue says every unit is now ``running``: one query, 100,000 pieces of
  news, each applied by the state machine, recorded and written. The window ends when every
  subjob is ``running`` in the engine and the repository flush that writes them has returned.

The figure is the CPU time of this process over each window (``time.process_time``: the event
loop's thread, aiosqlite's thread and any other), target under 0.5 s, and the longest the event
loop was blocked during it (a ticker sleeping 5 ms at a time notes its largest overshoot;
target under 50 ms; the loop thread's CPU between two ticks, which load does not inflate, is
printed beside it). The queries made are counted (target: one per sweep). The loop's own
thread CPU (``time.thread_time``) is printed beside the process's. ``--profile`` adds one
round whose "all running" sweep runs under cProfile (the event loop's thread only).

Run it alone with ``python -m benchmarks.monitor_sweep [--n 100000] [--rounds 3]``.
"""

from __future__ import annotations

import cProfile
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from ganga_async import ArgSplitter, Engine, Executable, Job, Status

from ._harness import (
    Row,
    Samples,
    bench_config,
    fmt_s,
    print_profile,
    run_main,
    scratch,
    verdict,
)
from ._lag import LagTicker
from ._null_backend import NullQueue, NullQueueDriver

TARGET_CPU = 0.5
TARGET_LAG = 0.050


@dataclasses.dataclass
class Sweep:
    """One measured sweep: process and loop-thread CPU, wall time, worst loop lag, queries."""

    cpu: float
    loop_cpu: float
    wall: float
    lag: float
    cpu_lag: float
    queries: int


def run_round(root: Path, n: int, profiler: cProfile.Profile | None = None) -> dict[str, Sweep]:
    """Submit ``n`` subjobs to ``NullQueue`` in a fresh engine, then measure the two sweeps
    (``profiler``, when given, runs over the second)."""
    gangadir = root / f"gangadir-{time.monotonic_ns()}"
    found: dict[str, Sweep] = {}

    async def main() -> None:
        job = Job(application=Executable(exe="/bin/true"), backend=NullQueue(),
                  splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
        async with Engine(gangadir, config=bench_config(root)) as engine, \
                anyio.create_task_group() as tg:
            ticker = LagTicker()
            tg.start_soon(ticker.run)
            async with engine.events(masters_only=True) as events:
                await engine.submit(job)
                async for event in events:
                    if event.new is Status.SUBMITTED:
                        break
            table = job._record.table
            assert table is not None and table.counts[Status.SUBMITTED.code] == n
            await engine.repository.flush()
            backends = engine._backends
            driver = backends.drivers["NullQueue"]
            assert isinstance(driver, NullQueueDriver)
            cadence = backends.cadences["NullQueue"]

            async def sweep(profiler: cProfile.Profile | None = None) -> Sweep:
                """Ask for a sweep; it is over once the monitor has applied what it found and
                waits for news again, and the repository holds it."""
                queries = driver.sweeps
                if profiler is not None:
                    profiler.enable()
                ticker.window()
                cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
                driver.idle = anyio.Event()
                cadence.now()
                await driver.idle.wait()
                await engine.repository.flush()
                if profiler is not None:
                    profiler.disable()
                return Sweep(time.process_time() - cpu, time.thread_time() - loop_cpu,
                             time.perf_counter() - wall, *ticker.window_cpu(), driver.sweeps - queries)

            found["quiet"] = await sweep()
            driver.move_all(Status.RUNNING)
            found["all running"] = await sweep(profiler)
            if table.counts[Status.RUNNING.code] != n:
                raise RuntimeError(f"{table.counts[Status.RUNNING.code]} of {n} subjobs running")
            tg.cancel_scope.cancel()

    anyio.run(main, backend="asyncio")
    return found


def measure(n: int = 100_000, rounds: int = 3, tmpdir: str | None = None,
            profile: bool = False, top: int = 25) -> list[Row]:
    """Run ``rounds`` rounds (and one under cProfile with ``profile``), print the details,
    return the rows."""
    print(f"monitor_sweep: one sweep over {n} active subjobs on one backend, {rounds} rounds")
    sweeps: dict[str, list[Sweep]] = {"quiet": [], "all running": []}
    with scratch(tmpdir, "monitor-sweep") as root:
        for _ in range(rounds):
            for name, sweep in run_round(root, n).items():
                sweeps[name].append(sweep)
        if profile:
            profiler = cProfile.Profile()
            profiled = run_round(root, n, profiler)["all running"]
            print_profile(profiler, f"cProfile of the 'all running' sweep "
                          f"({fmt_s(profiled.cpu)} CPU under the profiler)", top)
    rows = []
    for name, runs in sweeps.items():
        cpu = Samples(name, [s.cpu for s in runs])
        lag = Samples(name, [s.lag for s in runs])
        print(f"  {name:<12} CPU {cpu.summary()}")
        print(f"  {'':<12} loop thread CPU best {fmt_s(min(s.loop_cpu for s in runs))}, wall best "
              f"{fmt_s(min(s.wall for s in runs))}; queries per sweep "
              f"{sorted({s.queries for s in runs})}; worst loop lag {lag.summary()}; loop thread CPU "
              f"between two ticks at most {fmt_s(min(s.cpu_lag for s in runs))} (best)")
        rows += [
            Row("20.3 monitor_sweep", f"{name}: engine CPU, {n} active", fmt_s(cpu.best),
                f"median {fmt_s(cpu.median)}", f"< {TARGET_CPU:g} s", verdict(cpu.best, TARGET_CPU)),
            Row("20.3 monitor_sweep", f"{name}: worst loop lag", fmt_s(lag.best),
                f"median {fmt_s(lag.median)}", f"< {TARGET_LAG * 1e3:g} ms",
                verdict(lag.best, TARGET_LAG)),
            Row("20.3 monitor_sweep", f"{name}: status queries", str(max(s.queries for s in runs)),
                "", "1", "ok" if all(s.queries == 1 for s in runs) else "MISSED"),
        ]
    return rows


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return run_main(measure, __doc__, argv, n=100_000,
                    profile="one round with the 'all running' sweep under cProfile")


if __name__ == "__main__":
    main()
