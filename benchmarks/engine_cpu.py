"""Issue 20, figure 2: the engine's CPU per subjob over its whole life, on a backend that runs
nothing.

A master of ``n`` subjobs (``/bin/echo``, an ``ArgSplitter``) is submitted to a fresh engine on
``Null(complete=True)`` (``benchmarks/_null_backend.py``): its driver takes every unit and
reports it completed at once, so each subjob goes the whole way a real one does: accepted,
split into a row, persisted, resolved and submitted, ``submitted``, ``running`` (the catch-up
walk), ``completing``, finalised ``completed``, every change recorded and written. The window
runs from ``engine.submit(job)`` until ``engine.wait(job)`` returns and the repository flush
after it has written the last statuses.

The figure is this process's CPU time over the window (``time.process_time``: every thread,
so aiosqlite's database thread too) divided by ``n``; target under 50 µs. The event loop's
thread alone (``time.thread_time``) is printed beside it, the difference being the database
thread. Best and median of ``--rounds`` rounds.

The breakdown by stage comes from one more run under cProfile (the event loop's thread only):
each function's own time is given to the stage module that called it (``pipeline/accept.py``,
``split.py``, ``submit.py``, ``monitor.py``, the repository, the backend's driver, the Tasks
follower), through the profile's callers, in proportion to the time spent under each caller;
what no stage called (the event loop itself, anyio's streams) is *loop*. Shares are printed in
µs per subjob scaled to the unprofiled loop CPU of the best run (the profiler inflates small
calls more than large ones, so the shares are approximate).

Run it alone with ``python -m benchmarks.engine_cpu [--n 100000] [--rounds 3]``.
"""

from __future__ import annotations

import cProfile
import dataclasses
import pstats
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from ganga_async import Engine, Status

from ._harness import (
    Row,
    Samples,
    bench_config,
    fmt_s,
    run_main,
    scratch,
    verdict,
)
from .split_persist import make_job

TARGET = 50e-6

STAGES = (
    ("ganga_async/pipeline/accept.py", "accept"),
    ("ganga_async/pipeline/store.py", "accept"),
    ("ganga_async/engine.py", "accept"),
    ("ganga_async/pipeline/split.py", "split"),
    ("ganga_async/splitters/", "split"),
    ("ganga_async/pipeline/submit.py", "submit"),
    ("ganga_async/pipeline/monitor.py", "monitor + finalise"),
    ("ganga_async/pipeline/postprocess.py", "monitor + finalise"),
    ("ganga_async/persistence/", "repository (loop side)"),
    ("benchmarks/_null_backend.py", "backend driver"),
    ("ganga_async/backends/", "backend driver"),
    ("ganga_async/tasks.py", "tasks follower"),
)
"""Where a function's file lies -> the stage its time counts for (first match wins)."""


@dataclasses.dataclass
class Run:
    cpu: float
    loop_cpu: float
    wall: float


def run_engine(root: Path, n: int, profiler: cProfile.Profile | None = None) -> Run:
    """One master of ``n`` subjobs on ``Null(complete=True)``, from submit to all written."""
    gangadir = root / f"gangadir-{time.monotonic_ns()}"
    found: list[Run] = []

    async def main() -> None:
        job = make_job(n, complete=True)
        async with Engine(gangadir, config=bench_config(root)) as engine:
            if profiler is not None:
                profiler.enable()
            cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
            await engine.submit(job)
            await engine.wait(job)
            await engine.repository.flush()
            found.append(Run(time.process_time() - cpu, time.thread_time() - loop_cpu,
                             time.perf_counter() - wall))
            if profiler is not None:
                profiler.disable()
            table = job._record.table
            if job.status is not Status.COMPLETED or table is None or (
                    table.counts[Status.COMPLETED.code] != n):
                raise RuntimeError(f"job {job.id} is {job.status}, not completed with {n} subjobs")

    anyio.run(main, backend="asyncio")
    return found[0]


def stage_of(filename: str) -> str | None:
    for part, stage in STAGES:
        if part in filename:
            return stage
    return None


def by_stage(profiler: cProfile.Profile) -> dict[str, float]:
    """Own time of every function, given to the stages that called it (see the docstring)."""
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    shares: dict[Any, dict[str, float]] = {}

    def share(func: Any, path: frozenset[Any]) -> dict[str, float]:
        if func in shares:
            return shares[func]
        stage = stage_of(func[0])
        if stage is not None:
            result = {stage: 1.0}
        else:
            weights: dict[str, float] = {}
            callers = stats[func][4] if func in stats else {}
            for caller, (_, _, _, cum) in callers.items():
                if caller in path:
                    continue
                for name, part in share(caller, path | {func}).items():
                    weights[name] = weights.get(name, 0.0) + part * max(cum, 1e-9)
            total = sum(weights.values())
            result = {k: v / total for k, v in weights.items()} if total else {"loop": 1.0}
        shares[func] = result
        return result

    seconds: dict[str, float] = {}
    for func, (_, _, own, _, callers) in stats.items():
        if "of 'select." in func[2]:
            continue  # the loop waiting for I/O: wall time, not CPU
        stage = stage_of(func[0])
        if stage is not None:
            seconds[stage] = seconds.get(stage, 0.0) + own
            continue
        parts: dict[str, float] = {}
        for caller, (_, _, own_here, _) in callers.items():
            for name, part in share(caller, frozenset({func})).items():
                parts[name] = parts.get(name, 0.0) + part * own_here
        rest = own - sum(parts.values())
        if rest > 0:
            parts["loop"] = parts.get("loop", 0.0) + rest
        for name, value in parts.items():
            seconds[name] = seconds.get(name, 0.0) + value
    return seconds


def measure(n: int = 100_000, rounds: int = 3, tmpdir: str | None = None) -> list[Row]:
    """Run ``rounds`` rounds and one profiled run, print the details, return the rows."""
    print(f"engine_cpu: engine CPU per subjob over its whole life, {n} subjobs on "
          f"Null(complete=True), {rounds} rounds")
    runs: list[Run] = []
    with scratch(tmpdir, "engine-cpu") as root:
        for _ in range(rounds):
            runs.append(run_engine(root, n))
        profiler = cProfile.Profile()
        profiled = run_engine(root, n, profiler)
    per = Samples("per subjob", [r.cpu / n for r in runs])
    best = min(runs, key=lambda r: r.cpu)
    print(f"  process CPU per subjob {per.summary()}")
    print(f"  best run: {fmt_s(best.cpu)} CPU ({fmt_s(best.loop_cpu / n)} per subjob on the "
          f"event loop's thread, {fmt_s((best.cpu - best.loop_cpu) / n)} in other threads: "
          f"aiosqlite's), wall {fmt_s(best.wall)}")
    seconds = by_stage(profiler)
    total = sum(seconds.values())
    scale = best.loop_cpu / total if total else 0.0
    print(f"  event loop's thread by stage (cProfile, {fmt_s(profiled.loop_cpu)} loop CPU under "
          f"the profiler; scaled to the best run):")
    for name, value in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<24} {value / total * 100:5.1f}%  {value * scale / n * 1e6:6.1f} µs/subjob")
    print(f"    {'database thread':<24}    --   {(best.cpu - best.loop_cpu) / n * 1e6:6.1f} µs/subjob "
          f"(not profiled)")
    return [Row("20.2 engine_cpu", f"engine CPU per subjob, whole life, {n} on Null",
                f"{per.best * 1e6:.1f} µs", f"median {per.median * 1e6:.1f} µs",
                f"< {TARGET * 1e6:g} µs", verdict(per.best, TARGET, inclusive=False))]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return run_main(measure, __doc__, argv, n=100_000)


if __name__ == "__main__":
    main()
