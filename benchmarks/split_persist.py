"""Figure 2: split and persist 100,000 subjobs; time and memory per subjob.

What is measured:

- **engine**: a master ``Job(Executable(exe="/bin/echo"), Null(),
  ArgSplitter(args=[[str(i)] for i in range(n)]))`` submitted to an open engine in a fresh
  gangadir. ``Null`` (``benchmarks/_null_backend.py``) accepts units and runs nothing, so only
  the engine works. The clock runs from ``await engine.submit(job)`` until the engine logs
  ``job split`` (INFO, logger ``ganga_async.engine``), which it does once the subjob rows are
  committed and the master's subjob count is flushed; a logging handler notes the moment. That
  window holds adding the master, validating it, persisting the intent and the split. The
  engine's own ``seconds`` for the split stage is printed, as is the time until the master
  becomes ``submitted`` (every subjob handed to the backend), for information. After each
  run the repository is checked to hold ``n`` subjob rows and ``len(job.subjobs) == n``.
- **bare sqlite3**: the floor for the same write: one ``executemany`` of ``n`` rows
  ``(job_id, idx, status, overrides JSON)``, the overrides built and encoded in the generator
  as the engine does, into the repository's own ``subjobs`` table (its schema, without the
  foreign key check), in one transaction, in WAL mode with ``synchronous=NORMAL`` as the
  repository uses.

The two are interleaved over ``--rounds`` rounds; the figure is the engine's best time (target
under 1 s), shown as a ratio to the best bare time.

Memory comes from one more engine run under ``tracemalloc`` (slower, so never timed):
the peak of traced memory from ``submit()`` to ``job split``, divided by ``n`` (target: under
1 KiB per subjob), and the retained size of the master's in-memory subjob table (every object
reachable from it, counted once), at the split and again once every subjob is submitted and
holds its backend id.

``--profile`` adds one engine run under cProfile, from ``submit()`` until every subjob is
submitted to ``Null``, and prints where the event loop's time goes (the rows are inserted in
aiosqlite's thread, which the profile does not see).

Run it alone with ``python -m benchmarks.split_persist [--n 100000] [--rounds 3]``.
"""

from __future__ import annotations

import cProfile
import dataclasses
import json
import sqlite3
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import anyio

from ganga_async import ArgSplitter, Engine, Executable, Job
from ganga_async.persistence.schema import SCHEMA

from ._harness import (
    Milestones,
    Row,
    bench_config,
    fmt_bytes,
    fmt_s,
    interleave,
    listen_to_engine,
    print_profile,
    run_main,
    scratch,
    verdict,
)
from ._null_backend import Null

TARGET_SECONDS = 1.0
TARGET_BYTES = 1024

@dataclasses.dataclass
class EngineRun:
    """One engine run: seconds from ``submit()`` to each milestone, and memory when traced."""

    persisted: float = 0.0
    split_stage: float = 0.0
    submitted: float = 0.0
    close: float = 0.0
    peak: int | None = None
    table_at_split: int | None = None
    table_submitted: int | None = None


def make_job(n: int, *, complete: bool = False) -> Job:
    """The master every figure-2 and figure-3 run submits."""
    return Job(application=Executable(exe="/bin/echo"), backend=Null(complete=complete),
               splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))


def run_engine(root: Path, n: int, *, memory: bool = False,
               profiler: cProfile.Profile | None = None) -> EngineRun:
    """Submit one ``n``-subjob master to a fresh engine and time it until persisted.

    ``profiler``, when given, runs from ``submit()`` until every subjob is submitted.
    """
    config = bench_config(root)
    gangadir = root / f"gangadir-{time.monotonic_ns()}"
    run = EngineRun()

    async def main() -> None:
        job = make_job(n)

        def at_split() -> None:
            if memory:
                run.peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                run.table_at_split = retained_size(job._record.table)

        milestones = Milestones(at_split)
        async with Engine(gangadir, config=config) as engine:
            with listen_to_engine(milestones):
                if memory:
                    tracemalloc.start()
                if profiler is not None:
                    profiler.enable()
                start = time.perf_counter()
                await engine.submit(job)
                await milestones.split.wait()
                await milestones.submitted.wait()
                if profiler is not None:
                    profiler.disable()
            run.persisted = milestones.split_at - start
            run.split_stage = milestones.split_seconds
            run.submitted = milestones.submitted_at - start
            if memory:
                run.table_submitted = retained_size(job._record.table)
            stored = count_subjob_rows(engine.repository.path, job.id)
            if len(job.subjobs) != n or stored != n:
                raise RuntimeError(f"expected {n} subjobs, found {len(job.subjobs)} in memory "
                                   f"and {stored} rows in {engine.repository.path}")
            closing = time.perf_counter()
        run.close = time.perf_counter() - closing

    anyio.run(main, backend="asyncio")
    return run


def run_bare_sqlite(root: Path, n: int) -> float:
    """The floor: one ``executemany`` of ``n`` equivalent rows in one transaction."""
    path = root / f"bare-{time.monotonic_ns()}.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)  # foreign keys stay off: the floor checks no jobs row
        dumps = json.JSONEncoder(separators=(",", ":")).encode
        start = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO subjobs (job_id, idx, status, overrides) VALUES (?, ?, ?, ?)",
            ((1, i, 1, dumps({"application.args": [str(i)]})) for i in range(n)),
        )
        db.execute("COMMIT")
        elapsed = time.perf_counter() - start
        (stored,) = db.execute("SELECT count(*) FROM subjobs").fetchone()
    finally:
        db.close()
    if stored != n:
        raise RuntimeError(f"the bare insert stored {stored} rows, not {n}")
    return elapsed


def count_subjob_rows(path: Path, job_id: int | None) -> int:
    """Subjob rows of ``job_id`` as committed in the repository file (a separate reader)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (count,) = db.execute("SELECT count(*) FROM subjobs WHERE job_id=?", (job_id,)).fetchone()
    finally:
        db.close()
    return int(count)


def retained_size(root: object) -> int:
    """Bytes of every object reachable from ``root`` through containers and slots, each once."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if obj is None or isinstance(obj, bool) or id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        else:
            stack.extend(getattr(obj, s) for s in getattr(type(obj), "__slots__", ())
                         if hasattr(obj, s))
    return total


def measure(n: int = 100_000, rounds: int = 3, tmpdir: str | None = None,
            profile: bool = False, top: int = 25) -> list[Row]:
    """Run the interleaved rounds and the traced run, print the details, return the rows."""
    print(f"split_persist: {n} subjobs, {rounds} interleaved rounds")
    runs: list[EngineRun] = []
    with scratch(tmpdir, "split-persist") as root:
        def engine() -> float:
            runs.append(run_engine(root, n))
            return runs[-1].persisted

        samples = interleave(rounds, {
            "engine": engine,
            "bare sqlite3": lambda: run_bare_sqlite(root, n),
        })
        traced = run_engine(root, n, memory=True)
        if profile:
            profiler = cProfile.Profile()
            profiled = run_engine(root, n, profiler=profiler)
    eng, bare = samples["engine"], samples["bare sqlite3"]
    ratio = eng.best / bare.best
    for s in samples.values():
        print(f"  {s.name:<13} {s.summary()}")
    best = min(runs, key=lambda r: r.persisted)
    print(f"  {'':<13} best run: split stage (logged) {fmt_s(best.split_stage)}; every subjob "
          f"submitted to Null after {fmt_s(best.submitted)}; engine close {fmt_s(best.close)}")
    print(f"  engine / bare sqlite3: {ratio:.2f} best-to-best, "
          f"{eng.median / bare.median:.2f} median-to-median")
    assert traced.peak is not None
    assert traced.table_at_split is not None and traced.table_submitted is not None
    per_subjob = traced.peak / n
    print(f"  memory (tracemalloc, one more run): peak {fmt_bytes(traced.peak)} from submit() "
          f"to split = {per_subjob:.0f} B per subjob (target < {TARGET_BYTES} B)")
    print(f"  subjob table retained: {fmt_bytes(traced.table_at_split)} at the split "
          f"({traced.table_at_split / n:.0f} B per subjob), {fmt_bytes(traced.table_submitted)} "
          f"once submitted ({traced.table_submitted / n:.0f} B per subjob)")
    if profile:
        print_profile(profiler, f"cProfile of one engine run from submit() to every subjob "
                      f"submitted ({fmt_s(profiled.submitted)} under the profiler)", top)
    return [
        Row("2 split_persist", f"engine: submit to {n} rows persisted", fmt_s(eng.best),
            f"{ratio:.2f}x bare sqlite3", f"< {TARGET_SECONDS:g} s",
            verdict(eng.best, TARGET_SECONDS, inclusive=False)),
        Row("2 split_persist", "bare sqlite3 executemany", fmt_s(bare.best)),
        Row("2 split_persist", "tracemalloc peak per subjob", f"{per_subjob:.0f} B", "",
            f"< {TARGET_BYTES} B", verdict(per_subjob, TARGET_BYTES, inclusive=False)),
        Row("2 split_persist", "subjob table retained per subjob",
            f"{traced.table_at_split / n:.0f} B", f"{traced.table_submitted / n:.0f} B submitted"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return run_main(measure, __doc__, argv, n=100_000,
                    profile="one engine run under cProfile, to every subjob submitted")


if __name__ == "__main__":
    main()
