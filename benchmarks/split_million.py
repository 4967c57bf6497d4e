"""Issue 20, figure 4: split and persist 1,000,000 subjobs: time, bytes on disk per subjob,
and the longest the event loop was blocked meanwhile.

A master ``Job(Executable(exe="/bin/echo"), Null(), ArgSplitter(args=[[str(i)] for i in
range(n)]))`` is submitted to an open engine in a fresh gangadir (as in
:mod:`benchmarks.split_persist`, whose figure is the same at 100,000). The clock runs from
``await engine.submit(job)`` until the engine logs ``job split``, once every subjob row is
committed (target under 10 s). Meanwhile a ticker task sleeping 5 ms at a time notes the
longest the event loop was kept from it (target under 100 ms); the same is noted for the
second phase, from the split until every subjob is submitted to ``Null`` (for information,
with this process's CPU time for each phase). The ticker also notes the loop thread's CPU
time between two of its ticks, which a loaded machine does not inflate (see ``_lag.py``).

Garbage collection: every full (generation 2) collection is timed through ``gc.callbacks``
(its wall time and the CPU time of the thread it ran on, the loop's), the worst noted per
phase; the objects the collector tracks are counted once every subjob is submitted (the
user's job, with its argument lists, included), per active subjob.

Recovery: once the engine has closed, the gangadir is changed into what an engine killed
half-way through the submission leaves (the second half of the subjobs ``submitting`` with no
id, the master ``submitting``), and a new engine is opened on it, the ticker running: the
worst lag and loop CPU between two ticks until ``Engine.__aenter__`` returns (target under
100 ms, as figure 4's), its CPU time, the full collections meanwhile. The run checks that the
master is still half ``submitted`` and half ``submitting`` (``Null`` never answers).

Bytes on disk: once the engine has closed, the blocks the gangadir's repository files and
workspace take (``st_blocks``, what ``du`` counts) divided by ``n`` (target under 1 KiB per
subjob); the size with the write-ahead log, before the close, is printed beside it. The run
checks that the repository holds ``n`` subjob rows. ``--rounds`` runs follow one another.

Run it alone with ``python -m benchmarks.split_million [--n 1000000] [--rounds 2]``.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import resource
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from ganga_async import Engine, Status

from ._harness import (
    Milestones,
    Row,
    Samples,
    bench_config,
    fmt_bytes,
    fmt_s,
    listen_to_engine,
    run_main,
    scratch,
    verdict,
)
from ._lag import LagTicker
from .split_persist import count_subjob_rows, make_job

TARGET_SECONDS = 10.0
TARGET_BYTES = 1024
TARGET_LAG = 0.100


@dataclasses.dataclass
class Run:
    persisted: float = 0.0
    cpu_split: float = 0.0
    lag_split: float = 0.0
    cpu_lag_split: float = 0.0
    submitted: float = 0.0
    cpu_submit: float = 0.0
    lag_submit: float = 0.0
    cpu_lag_submit: float = 0.0
    disk_open: int = 0
    disk: int = 0
    gc_split: tuple[float, float, int] = (0.0, 0.0, 0)
    gc_submit: tuple[float, float, int] = (0.0, 0.0, 0)
    tracked: float = 0.0
    recovery: Recovery | None = None


@dataclasses.dataclass
class Recovery:
    opened: float = 0.0
    cpu: float = 0.0
    lag: float = 0.0
    cpu_lag: float = 0.0
    gc: tuple[float, float, int] = (0.0, 0.0, 0)
    tracked: float = 0.0


class FullCollections:
    """Times every full (generation 2) garbage collection while installed in ``gc.callbacks``:
    :meth:`window` returns the worst one since the last call (wall, the collecting thread's
    CPU) and how many there were."""

    def __init__(self) -> None:
        self._start = (0.0, 0.0)
        self._reset()

    def _reset(self) -> None:
        self.worst, self.worst_cpu, self.count = 0.0, 0.0, 0

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._start = (time.perf_counter(), time.thread_time())
            return
        wall, cpu = time.perf_counter() - self._start[0], time.thread_time() - self._start[1]
        self.count += 1
        self.worst = max(self.worst, wall)
        self.worst_cpu = max(self.worst_cpu, cpu)

    def window(self) -> tuple[float, float, int]:
        found = (self.worst, self.worst_cpu, self.count)
        self._reset()
        return found


def tracked_objects() -> int:
    """Objects the garbage collector tracks now, after a full collection."""
    gc.collect()
    return len(gc.get_objects())


def disk_bytes(path: Path) -> int:
    """Bytes the files and directories under ``path`` take on disk (``du``)."""
    total = 0
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total


def run_engine(root: Path, n: int) -> Run:
    gangadir = root / f"gangadir-{time.monotonic_ns()}"
    run = Run()

    async def main() -> None:
        base = tracked_objects()
        job = make_job(n)
        milestones = Milestones()
        ticker = LagTicker()
        async with Engine(gangadir, config=bench_config(root)) as engine, \
                anyio.create_task_group() as tg:
            tg.start_soon(ticker.run)
            await anyio.sleep(0.05)
            with listen_to_engine(milestones), FullCollections() as collections:
                ticker.window()
                cpu, start = time.process_time(), time.perf_counter()
                await engine.submit(job)
                await milestones.split.wait()
                run.lag_split, run.cpu_lag_split = ticker.window_cpu()
                run.gc_split = collections.window()
                run.cpu_split = time.process_time() - cpu
                cpu = time.process_time()
                await milestones.submitted.wait()
                run.lag_submit, run.cpu_lag_submit = ticker.window_cpu()
                run.gc_submit = collections.window()
                run.cpu_submit = time.process_time() - cpu
            run.tracked = (tracked_objects() - base) / n
            run.persisted = milestones.split_at - start
            run.submitted = milestones.submitted_at - start
            await engine.repository.flush()
            run.disk_open = disk_bytes(gangadir)
            tg.cancel_scope.cancel()
        stored = count_subjob_rows(engine.repository.path, job.id)
        if stored != n:
            raise RuntimeError(f"expected {n} subjob rows, found {stored}")

    anyio.run(main, backend="asyncio")
    run.disk = disk_bytes(gangadir)
    run.recovery = run_recovery(root, gangadir, n)
    return run


def half_submitted(gangadir: Path, n: int) -> None:
    """Make the gangadir's one master what an engine killed half-way through its submission
    leaves: the second half of its subjobs ``submitting``, never handed over (no id)."""
    (path,) = gangadir.glob("repository/*/jobs.sqlite")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE subjobs SET status = ?, backend_id = NULL, t_submitted = 0 "
                   "WHERE idx >= ?", (Status.SUBMITTING.code, n // 2))
        db.execute("UPDATE jobs SET status = ?", (str(Status.SUBMITTING),))
    db.close()


def run_recovery(root: Path, gangadir: Path, n: int) -> Recovery:
    """Open an engine on the master left half submitted; time the open (the recovery)."""
    half_submitted(gangadir, n)
    run = Recovery()

    async def main() -> None:
        ticker = LagTicker()
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker.run)
            base = tracked_objects()
            await anyio.sleep(0.05)
            with FullCollections() as collections:
                ticker.window()
                cpu, start = time.process_time(), time.perf_counter()
                async with Engine(gangadir, config=bench_config(root)) as engine:
                    run.opened = time.perf_counter() - start
                    run.cpu = time.process_time() - cpu
                    run.lag, run.cpu_lag = ticker.window_cpu()
                    run.gc = collections.window()
                    run.tracked = (tracked_objects() - base) / n
                    (job,) = await engine.jobs()
                    counts = job.subjobs.counts()
            tg.cancel_scope.cancel()
        expected = {"submitted": n - n // 2, "submitting": n // 2}
        if counts != expected:
            raise RuntimeError(f"recovered {counts}, expected {expected}")

    anyio.run(main, backend="asyncio")
    return run


def measure(n: int = 1_000_000, rounds: int = 2, tmpdir: str | None = None) -> list[Row]:
    """Run ``rounds`` engine runs, print the details, return the rows."""
    print(f"split_million: split and persist {n} subjobs, {rounds} rounds")
    runs: list[Run] = []
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with scratch(tmpdir, "split-million") as root:
        for _ in range(rounds):
            runs.append(run_engine(root, n))
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss
    persisted = Samples("submit to split", [r.persisted for r in runs])
    lag = Samples("loop lag", [r.lag_split for r in runs])
    per = min(r.disk for r in runs) / n
    print(f"  submit() to {n} rows persisted: {persisted.summary()}")
    print(f"  worst loop lag until split: {lag.summary()}; loop thread CPU between two ticks at "
          f"most {fmt_s(min(r.cpu_lag_split for r in runs))} (best run)")
    for r in runs:
        print(f"    run: CPU until split {fmt_s(r.cpu_split)}; then every subjob submitted to Null "
              f"after {fmt_s(r.submitted)} (CPU {fmt_s(r.cpu_submit)}, worst loop lag "
              f"{fmt_s(r.lag_submit)}, {fmt_s(r.cpu_lag_submit)} of CPU); on disk "
              f"{fmt_bytes(r.disk)} closed, {fmt_bytes(r.disk_open)} open with its WAL")
    print(f"  on disk per subjob: {per:.0f} B (target < {TARGET_BYTES} B); peak RSS grew by "
          f"{fmt_bytes(grown * 1024)} ({grown * 1024 / n:.0f} B per subjob)")
    for r in runs:
        print(f"    full collections: until split {_gc(r.gc_split)}; split to submitted "
              f"{_gc(r.gc_submit)}; objects the collector tracks once all are submitted: "
              f"{r.tracked:.2f} per active subjob (the user's job included)")
    recoveries = [r.recovery for r in runs if r.recovery is not None]
    rec_lag = Samples("recovery lag", [r.lag for r in recoveries])
    print(f"  reopening on the master left half submitted: worst loop lag {rec_lag.summary()} "
          f"(target < {TARGET_LAG * 1e3:g} ms)")
    for rec in recoveries:
        print(f"    run: engine open in {fmt_s(rec.opened)} (CPU {fmt_s(rec.cpu)}), loop thread CPU "
              f"between two ticks at most {fmt_s(rec.cpu_lag)}, full collections {_gc(rec.gc)}; "
              f"{rec.tracked:.2f} tracked objects per subjob after the open")
    worst_gc = min(max(r.gc_submit[0], r.gc_split[0]) for r in runs)
    return [
        Row("20.4 split_million", f"submit to {n} rows persisted", fmt_s(persisted.best),
            f"median {fmt_s(persisted.median)}", f"< {TARGET_SECONDS:g} s",
            verdict(persisted.best, TARGET_SECONDS, inclusive=False)),
        Row("20.4 split_million", "bytes on disk per subjob", f"{per:.0f} B", "",
            f"< {TARGET_BYTES} B", verdict(per, TARGET_BYTES, inclusive=False)),
        Row("20.4 split_million", "worst loop lag until split", fmt_s(lag.best),
            f"median {fmt_s(lag.median)}", f"< {TARGET_LAG * 1e3:g} ms",
            verdict(lag.best, TARGET_LAG, inclusive=False)),
        Row("20.4 split_million", "worst loop CPU between ticks until split",
            fmt_s(min(r.cpu_lag_split for r in runs)), "", "(load-independent)"),
        Row("20.4 split_million", "worst loop lag, split to submitted",
            fmt_s(min(r.lag_submit for r in runs)),
            f"{fmt_s(min(r.cpu_lag_submit for r in runs))} CPU", f"< {TARGET_LAG * 1e3:g} ms",
            verdict(min(r.lag_submit for r in runs), TARGET_LAG, inclusive=False)),
        Row("20.4 split_million", "worst full collection, submit to submitted", fmt_s(worst_gc),
            f"{min(r.tracked for r in runs):.2f} tracked/subjob", f"< {TARGET_LAG * 1e3:g} ms",
            verdict(worst_gc, TARGET_LAG, inclusive=False)),
        Row("20.4 split_million", "worst loop lag, reopening half submitted", fmt_s(rec_lag.best),
            f"median {fmt_s(rec_lag.median)}; "
            f"{fmt_s(min(r.cpu_lag for r in recoveries))} CPU", f"< {TARGET_LAG * 1e3:g} ms",
            verdict(rec_lag.best, TARGET_LAG, inclusive=False)),
    ]


def _gc(found: tuple[float, float, int]) -> str:
    worst, cpu, count = found
    return f"{count}, the worst {fmt_s(worst)} ({fmt_s(cpu)} CPU)" if count else "none"


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return run_main(measure, __doc__, argv, n=1_000_000, rounds=2)


if __name__ == "__main__":
    main()
