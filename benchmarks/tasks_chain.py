"""Tasks figure (issue 16): a task of two chained transforms against the same jobs by hand.

What is measured, each in a fresh gangadir on ``Local(max_concurrent=8)`` running ``/bin/true``:

- **task**: a ``CoreTask`` with ``float = 50`` of two transforms: ``n`` units from an
  ``ArgSplitter``, then a ``TaskChainInput`` making one child unit per completed parent (its
  input file the parent's ``stdout``), ``2n`` jobs in all. Timed from ``engine.tasks.run()``
  until every unit completed.
- **by hand**: the same ``2n`` unsplit jobs submitted one by one in two waves: ``n`` jobs,
  wait for all, then ``n`` jobs taking the first wave's ``stdout`` files, wait for all.

The figure is the ratio task / by hand: what event-driven units, chaining and the float cost
over a script that knows the answer in advance. Then the task rules alone (no engine, no I/O:
``to_submit``, ``job_ended``, ``chain_pending``, ``add_chained`` for one end at a time) are
timed in CPU seconds for ``n`` and ``4n`` units: the growth is 4 when they are linear in the
units, 16 when quadratic.

Run it alone with ``python -m benchmarks.tasks_chain [--n 1000] [--rounds 3]``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from ganga_async import (
    ArgSplitter,
    CoreTask,
    CoreTransform,
    Engine,
    Executable,
    Job,
    Local,
    Status,
    TaskChainInput,
    TaskStatus,
    UnitStatus,
)
from ganga_async.model.task import Unit, add_chained, chain_pending, job_ended, to_submit

from ._harness import Row, bench_config, fmt_s, interleave, run_main, scratch

FLOAT = 50


def _true(**kwargs: object) -> dict[str, object]:
    return {"application": Executable(exe="/bin/true"), "backend": Local(max_concurrent=8), **kwargs}


def run_task(root: Path, n: int) -> float:
    run = root / f"task-{time.monotonic_ns()}"
    config = bench_config(root)

    async def main() -> float:
        async with Engine(run / "gangadir", config=config) as engine:
            task = CoreTask(name="bench", float=FLOAT, transforms=[
                CoreTransform(**_true(unit_splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))),
                CoreTransform(**_true(chain_input=TaskChainInput(include_file_mask=["^stdout$"]))),
            ])
            started = time.perf_counter()
            await engine.tasks.run(task)
            await engine.tasks.wait(task)
            elapsed = time.perf_counter() - started
            assert task.status is TaskStatus.COMPLETED, task.unit_counts()
            assert len(await engine.summary()) == 2 * n
            return elapsed

    return anyio.run(main, backend="asyncio")


def run_by_hand(root: Path, n: int) -> float:
    run = root / f"hand-{time.monotonic_ns()}"
    config = bench_config(root)

    async def main() -> float:
        async with Engine(run / "gangadir", config=config) as engine:
            started = time.perf_counter()
            first = [Job(**_true(), name=str(i)) for i in range(n)]  # type: ignore[arg-type]
            for job in first:
                await engine.submit(job)
            for job in first:
                await engine.wait(job)
            second = [Job(**_true(), inputfiles=[str(Path(j.outputdir) / "stdout")])  # type: ignore[arg-type]
                      for j in first]
            for job in second:
                await engine.submit(job)
            for job in second:
                await engine.wait(job)
            elapsed = time.perf_counter() - started
            assert all(j.status is Status.COMPLETED for j in first + second)
            return elapsed

    return anyio.run(main, backend="asyncio")


def rules_cpu(n: int) -> float:
    """CPU seconds the task rules take to run ``n`` units chained to ``n`` more, float 50."""
    started = time.process_time()
    task = CoreTask(name="rules", float=FLOAT, transforms=[
        CoreTransform(**_true(unit_splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))),
        CoreTransform(**_true(chain_input=TaskChainInput()))])
    for trf in task.transforms:
        trf.make_units()
    task.status = TaskStatus.RUNNING
    running: list[tuple[int, Unit]] = []
    for ended in range(2 * n + 1):
        for i, unit in to_submit(task):
            unit.status, unit.job_id, unit.runs = UnitStatus.RUNNING, ended, unit.runs + 1
            running.append((i, unit))
        if ended == 2 * n:
            break
        i, unit = running.pop(0)
        job_ended(task, task.transforms[i], unit, Status.COMPLETED, 0, None)
        for index, parents in chain_pending(task):
            add_chained(task, index, parents, [])
    assert task.status is TaskStatus.COMPLETED and not running
    return time.process_time() - started


def measure(n: int = 1000, rounds: int = 3, tmpdir: str | None = None) -> list[Row]:
    """A task of ``n`` + ``n`` chained units against ``2n`` jobs by hand in two waves."""
    print(f"tasks: {n} units chained to {n} more (float {FLOAT}) against {2 * n} jobs by hand "
          f"in two waves, {rounds} interleaved rounds")
    with scratch(tmpdir, "tasks") as root:
        samples = interleave(rounds, {"task": lambda: run_task(root, n),
                                      "by hand": lambda: run_by_hand(root, n)})
    task, hand = samples["task"], samples["by hand"]
    for s in samples.values():
        print(f"  {s.name:<8} {s.summary()}")
    ratio = task.best / hand.best
    print(f"  task / by hand: {ratio:.2f} best-to-best, {task.median / hand.median:.2f} "
          "median-to-median")
    small, large = min(rules_cpu(n) for _ in range(rounds)), min(rules_cpu(4 * n) for _ in range(rounds))
    print(f"  rules alone: {small:.3f} s CPU for {n}+{n} units, {large:.3f} s for {4 * n}+{4 * n}: "
          f"growth {large / small:.1f} (4 linear, 16 quadratic)")
    return [Row("tasks", f"{n}+{n} chained units, float {FLOAT}, /bin/true", fmt_s(task.best),
                f"{ratio:.2f}x by hand")]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return run_main(measure, __doc__, argv, n=1000, n_help="units of the first transform")


if __name__ == "__main__":
    main()
