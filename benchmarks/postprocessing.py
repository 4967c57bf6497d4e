"""Postprocessing figures (issue 15): merging many outputs, and the cost of retries.

What is measured:

- **merge**: ``n`` output directories (``<root>/jobs/<i>/stdout``, three short lines each, as
  a subjob's stdout) merged into one file by ``TextMerger(files=["stdout"]).merge(jobs,
  outdir)``, the same call ``job.merge()`` and the engine make (headers between files and
  the ``.merge_summary`` included), against ``cat`` of the same files into one file (the
  floor: one process, one write per file). The inputs are written once; each round merges
  them again (``overwrite``).
- **retries**: a master of ``n`` subjobs on ``Local`` (``/bin/sh`` scripts), with
  ``Retry(max_attempts=2, backoff="0s")``, in which 30% of the subjobs fail on their first
  run (a marker file says whether it already ran) and succeed on the second, against the
  same master where none fails. Each is timed from ``submit()`` until the master is final
  in a fresh gangadir; the figure is the extra time per retried subjob, and the ratio of
  the two runs (the retried subjobs run twice: 1.3 times the processes).

Run it alone with ``python -m benchmarks.postprocessing [--n 10000] [--rounds 3]``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from ganga_async import ArgSplitter, Engine, Executable, Job, Local, Retry, Status, TextMerger

from ._harness import Row, bench_config, fmt_s, interleave, run_main, scratch

FAILING = 0.3
"""The fraction of subjobs that fail on their first run."""


@dataclasses.dataclass
class Done:
    """A completed subjob as a merger reads it."""

    fqid: str
    outputdir: Path
    status: str = "completed"
    name: str = ""
    master: Any = None
    subjobs: tuple[()] = ()


def make_outputs(root: Path, n: int) -> list[Done]:
    jobs = []
    for i in range(n):
        out = root / "jobs" / str(i)
        out.mkdir(parents=True)
        (out / "stdout").write_text(f"subjob {i} starting\nresult {i * i}\nsubjob {i} done\n")
        jobs.append(Done(f"0.{i}", out))
    return jobs


def measure_merge(n: int, rounds: int, tmpdir: str | None) -> list[Row]:
    print(f"postprocessing merge: stdout of {n} subjobs, {rounds} interleaved rounds")
    with scratch(tmpdir, "merge") as root:
        jobs = make_outputs(root, n)
        files = [str(job.outputdir / "stdout") for job in jobs]
        merger = TextMerger(files=["stdout"], overwrite=True)

        def text_merger() -> float:
            started = time.perf_counter()
            [written] = merger.merge(jobs, root / "merged")
            elapsed = time.perf_counter() - started
            assert written.stat().st_size > sum(len(f) for f in files) // 4
            return elapsed

        def cat() -> float:
            started = time.perf_counter()
            with open(root / "cat.out", "wb") as out:
                subprocess.run(["cat", *files], stdout=out, check=True)
            return time.perf_counter() - started

        samples = interleave(rounds, {"TextMerger": text_merger, "cat": cat})
    merged, floor = samples["TextMerger"], samples["cat"]
    for s in samples.values():
        print(f"  {s.name:<11} {s.summary()}")
    ratio = merged.best / floor.best
    print(f"  TextMerger / cat: {ratio:.2f} best-to-best, {merged.median / floor.median:.2f} "
          "median-to-median")
    return [Row("merge", f"TextMerger: stdout of {n} subjobs", fmt_s(merged.best),
                f"{ratio:.2f}x cat")]


def retry_job(n: int, marks: Path, failing: bool) -> Job:
    script = ('[ -e "$2/$1" ] || { touch "$2/$1"; '
              f'[ $(($1 % 10)) -lt {int(FAILING * 10) if failing else 0} ] && exit 1; }}; echo ok')
    return Job(application=Executable(exe="/bin/sh"), backend=Local(max_concurrent=8),
               splitter=ArgSplitter(args=[["-c", script, "sh", str(i), str(marks)]
                                          for i in range(n)]),
               retry=Retry(max_attempts=2, backoff="0s", give_up_fraction=1.0))


def run_retries(root: Path, n: int, failing: bool) -> float:
    run = root / f"run-{time.monotonic_ns()}"
    marks = run / "marks"
    marks.mkdir(parents=True)
    config = bench_config(root)

    async def main() -> float:
        async with Engine(run / "gangadir", config=config) as engine:
            job = retry_job(n, marks, failing)
            started = time.perf_counter()
            await engine.submit(job)
            await engine.wait(job)
            elapsed = time.perf_counter() - started
            assert job.status is Status.COMPLETED, job.subjobs.counts()
            retried = sum(1 for s in job.subjobs if len(s.attempts) == 2)
            assert retried == (int(n * FAILING) if failing else 0), retried
            return elapsed

    return anyio.run(main, backend="asyncio")


def measure_retries(n: int, rounds: int, tmpdir: str | None) -> list[Row]:
    print(f"postprocessing retries: {n} subjobs, {FAILING:.0%} failing on their first run, "
          f"{rounds} interleaved rounds")
    with scratch(tmpdir, "retries") as root:
        samples = interleave(rounds, {
            "with failures": lambda: run_retries(root, n, True),
            "without": lambda: run_retries(root, n, False),
        })
    failed, clean = samples["with failures"], samples["without"]
    for s in samples.values():
        print(f"  {s.name:<13} {s.summary()}")
    extra = (failed.best - clean.best) / (n * FAILING)
    ratio = failed.best / clean.best
    print(f"  with / without: {ratio:.2f} best-to-best (the retried subjobs are {FAILING:.0%} "
          f"more processes); {fmt_s(extra)} more per retried subjob")
    return [Row("retries", f"{n} subjobs, {FAILING:.0%} retried once", fmt_s(failed.best),
                f"{ratio:.2f}x no failures", f"{1 + FAILING:.2f}x processes")]


def measure(n: int = 10_000, rounds: int = 3, tmpdir: str | None = None) -> list[Row]:
    """The merge of ``n`` outputs and a run of ``n // 10`` subjobs with retries."""
    return [*measure_merge(n, rounds, tmpdir), *measure_retries(max(n // 10, 10), rounds, tmpdir)]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return run_main(measure, __doc__, argv, n=10_000, n_help="outputs merged; the retry run has n/10 subjobs")


if __name__ == "__main__":
    main()
