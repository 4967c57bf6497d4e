"""Figure 4: the ShareRef actor under load; exact counts, operations per second, a crash.

What is measured:

- **throughput**: the actor alone on a real repository (SQLite, WAL) in a fresh gangadir.
  ``n`` operations from 100 tasks, each awaiting its reply, which comes once the operation is
  committed: half ``incref(holder, name)`` over 20 ShareDirs, half ``decref(holder)``, every
  task on its own holders. The clock runs from the first send to the last reply; the figure is
  operations per second (target: over 20,000), best of ``--rounds`` rounds. The number of
  transactions the group commit needed is printed.
- **exactness**: ``n`` engine operations from 50 tasks (each a seeded plan of prepare a new
  job, copy a prepared job, remove one of its jobs, box add, box remove), then the same plans
  replayed one task after the other in a fresh gangadir. ShareDirs are named by their origin
  (which base job, which task's prepare), and the counts of both runs must be equal, and the
  counts stored in the repository equal the actor's in-memory ones.
- **crash**: the concurrent load in a child process killed with SIGKILL after one second,
  then ``shareref.rebuild()`` in this process: the counts must equal the owners that exist
  (jobs and box entries whose application is prepared; 0 for orphaned ShareDirs).

Run it alone with ``python -m benchmarks.shareref_actor [--n 10000] [--rounds 3]``.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import anyio

from ganga_async import Engine, Job
from ganga_async.persistence.repository import Repository
from ganga_async.prepared.sharedir import SharedArea
from ganga_async.prepared.shareref import ShareRef

from ._harness import Row, bench_config, clean_env, common_options, fmt_s, print_table, scratch

TARGET_OPS = 20_000
TASKS = 100
WORKERS = 50
BASES = 4


async def _no_owners() -> list[tuple[str, str]]:
    return []


async def _no_unprepare(holders: Sequence[str]) -> None:
    pass


def throughput(root: Path, n: int) -> tuple[float, int]:
    """Seconds for ``n`` committed actor operations from TASKS tasks, and the transactions."""
    writes = 0

    class Counting(Repository):
        async def shareref_write(self, *args: object, **kwargs: object) -> None:
            nonlocal writes
            writes += 1
            await super().shareref_write(*args, **kwargs)  # type: ignore[arg-type]

    async def main() -> float:
        repository = Counting(root / "jobs.sqlite")
        await repository.open()
        area = SharedArea(root / "shared")
        shareref = ShareRef(repository, area, owners=_no_owners, unprepare=_no_unprepare)
        names = [(await area.create({})).name for _ in range(20)]
        per_task = n // TASKS

        async def task(t: int) -> None:
            rng = random.Random(t)
            for i in range(per_task):
                holder = f"job:{t}.{i % 10}"
                if i % 2 == 0:
                    await shareref.incref(holder, rng.choice(names))
                else:
                    await shareref.decref(holder)

        async with anyio.create_task_group() as tg:
            await tg.start(shareref.run)
            start = time.perf_counter()
            async with anyio.create_task_group() as workers:
                for t in range(TASKS):
                    workers.start_soon(task, t)
            elapsed = time.perf_counter() - start
            await shareref.aclose()
        await repository.aclose()
        return elapsed

    return anyio.run(main, backend="asyncio"), writes


def plan(seed: int, steps: int) -> list[tuple[str, int]]:
    """A task's operations: (action, argument), the same whatever order tasks run in."""
    rng = random.Random(seed)
    return [(rng.choice(["prepare", "copy", "copy", "remove", "box", "unbox"]), rng.randrange(1000))
            for _ in range(steps)]


async def run_plans(engine: Engine, plans: list[list[tuple[str, int]]], concurrent: bool
                    ) -> dict[str, str]:
    """Run the plans; return the origin label of every ShareDir made."""
    origin: dict[str, str] = {}
    bases = []
    for k in range(BASES):
        job = Job()
        await engine.add(job)
        origin[(await engine.prepare(job)).name] = f"base{k}"
        bases.append(job)

    async def worker(t: int, steps: list[tuple[str, int]]) -> None:
        mine: list[Job] = []
        boxed: list[str] = []
        for step, (action, arg) in enumerate(steps):
            if action == "prepare":
                job = Job()
                await engine.add(job)
                origin[(await engine.prepare(job)).name] = f"t{t}.{step}"
                mine.append(job)
            elif action == "copy":
                clone = bases[arg % BASES].copy()
                await engine.add(clone)
                mine.append(clone)
            elif action == "remove" and mine:
                await engine.remove(mine.pop(arg % len(mine)))
            elif action == "box":
                name = f"t{t}.{step}"
                await engine.box.add(bases[arg % BASES], name)
                boxed.append(name)
            elif action == "unbox" and boxed:
                await engine.box.remove(boxed.pop(arg % len(boxed)))

    if concurrent:
        async with anyio.create_task_group() as tg:
            for t, steps in enumerate(plans):
                tg.start_soon(worker, t, steps)
    else:
        for t, steps in enumerate(plans):
            await worker(t, steps)
    return origin


def exactness(root: Path, n: int) -> tuple[bool, bool, float, float]:
    """(concurrent == serial, stored == in-memory, concurrent seconds, serial seconds)."""
    plans = [plan(seed, n // WORKERS) for seed in range(WORKERS)]
    results = {}
    for concurrent in (True, False):
        gangadir = root / ("concurrent" if concurrent else "serial")

        async def main(gangadir: Path, concurrent: bool) -> tuple[dict[str, int], bool]:
            async with Engine(gangadir, config=bench_config(root), monitoring=False) as engine:
                origin = await run_plans(engine, plans, concurrent)
                counts = await engine.shareref.counts()
                await engine.repository.flush()
                db = sqlite3.connect(engine.repository.path)
                stored = dict(db.execute(
                    "SELECT s.name, COUNT(h.holder) FROM sharedirs s LEFT JOIN shareref_holders h"
                    " ON h.name = s.name GROUP BY s.name"))
                db.close()
                return {origin[name]: count for name, count in counts.items()}, stored == counts

        start = time.perf_counter()
        labelled, persisted = anyio.run(main, gangadir, concurrent, backend="asyncio")
        results[concurrent] = (labelled, persisted, time.perf_counter() - start)
    (conc, conc_ok, conc_s), (serial, serial_ok, serial_s) = results[True], results[False]
    return conc == serial, conc_ok and serial_ok, conc_s, serial_s


LOAD = textwrap.dedent("""
    import sys, anyio
    from ganga_async import Engine, load_config
    from benchmarks.shareref_actor import WORKERS, plan, run_plans
    async def main():
        plans = [plan(seed, 5000) for seed in range(WORKERS)]
        async with Engine(sys.argv[1], config=load_config(), monitoring=False) as engine:
            print("loaded", flush=True)
            await run_plans(engine, plans, True)
    anyio.run(main, backend="asyncio")
""")


def crash(root: Path, after: float) -> tuple[bool, int]:
    """(rebuilt counts == owners, number of owners) after a SIGKILL ``after`` seconds in."""
    gangadir = root / "crash"
    proc = subprocess.Popen([sys.executable, "-c", LOAD, str(gangadir)], stdout=subprocess.PIPE,
                            text=True, env=clean_env(root), cwd=Path(__file__).parent.parent)
    assert proc.stdout is not None
    proc.stdout.readline()
    time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()

    async def main() -> tuple[bool, int]:
        async with Engine(gangadir, config=bench_config(root), monitoring=False) as engine:
            counts = await engine.shareref.rebuild()
            owners = Counter(j.application.is_prepared.name for j in await engine.jobs()
                             if j.application.is_prepared is not None)
            owners.update(e.sharedir for e in await engine.box.entries() if e.sharedir)
            orphans = {name: 0 for name in await engine.shared.names() if name not in owners}
            return counts == {**orphans, **owners}, sum(owners.values())

    return anyio.run(main, backend="asyncio")


def measure(n: int = 10_000, rounds: int = 3, tmpdir: str | None = None) -> list[Row]:
    print(f"ShareRef actor: {n} operations from {TASKS} tasks, {rounds} rounds")
    rates = []
    for r in range(rounds):
        with scratch(tmpdir, "shareref") as root:
            seconds, writes = throughput(root, n)
        rates.append(n / seconds)
        print(f"  round {r + 1}: {fmt_s(seconds)}, {n / seconds:,.0f} ops/s, {writes} transactions")
    best = max(rates)
    print(f"engine operations (prepare, copy, remove, box add/remove): {n} from {WORKERS} tasks, "
          "then the same plans replayed serially")
    with scratch(tmpdir, "shareref-exact") as root:
        same, persisted, conc_s, serial_s = exactness(root, n)
    print(f"  concurrent {fmt_s(conc_s)}, serial {fmt_s(serial_s)}; counts equal to the serial "
          f"replay: {same}; stored equal to in-memory: {persisted}")
    with scratch(tmpdir, "shareref-crash") as root:
        rebuilt, owners = crash(root, 1.0)
    print(f"  kill -9 after 1 s of load, then rebuild(): counts equal to the {owners} owners: "
          f"{rebuilt}")
    return [
        Row("shareref ops/s", f"{n} committed actor operations, {TASKS} tasks",
            f"{best:,.0f}/s", "", f"> {TARGET_OPS:,}/s", "ok" if best > TARGET_OPS else "MISSED"),
        Row("shareref exact", f"{n} engine operations, {WORKERS} tasks vs serial replay",
            "equal" if same and persisted else "DIFFERENT", "", "equal, stored == in-memory",
            "ok" if same and persisted else "MISSED"),
        Row("shareref crash", "kill -9 under load, then rebuild()",
            "equal" if rebuilt else "DIFFERENT", "", "counts == owners",
            "ok" if rebuilt else "MISSED"),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = common_options(__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args(argv)
    print_table(measure(args.n, args.rounds, args.tmpdir))


if __name__ == "__main__":
    main(sys.argv[1:])
