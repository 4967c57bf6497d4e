"""Figure 6: endurance. One engine, then one daemon, running 100 successive 1,000-subjob jobs.

Each job is a master of ``n`` ``/bin/true`` subjobs (``Local(max_concurrent=8)``, an
``ArgSplitter``), submitted and waited for; after every ``--every`` jobs (10 by default) the
process running the engine is sampled:

- **RSS**: ``VmRSS`` of ``/proc/<pid>/status``;
- **fds**: the entries of ``/proc/<pid>/fd``;
- **threads**: ``Threads`` of ``/proc/<pid>/status``;
- **tasks**: asyncio tasks not done, in the engine's loop (``asyncio.all_tasks()`` in process;
  through ``send_cmd`` and the garbage collector's list of objects in the daemon);
- the process's CPU time since the first job.

Variants, each in a fresh gangadir:

- **engine, one at a time**: ``Engine`` in this process, ``submit`` then ``wait``, 100 times;
- **engine, 10 at once**: the same 100 jobs in waves of ``--width`` jobs submitted together
  (``Local(max_concurrent=4)`` each), sampled after every wave;
- **daemon, one at a time**: ``ganga-async service start`` on the scratch gangadir, the jobs
  submitted and waited for through ``AsyncGangaService`` (``submit`` and ``wait``), the daemon
  process sampled from ``/proc``;
- **daemon, 10 at once**: the same in waves.

The figure: each series from the sample after job 10 (the first tenth of the jobs) to the
last, as a least-squares slope per job, printed with the growth it makes over those 90 jobs.
Flat means fds, threads and tasks not above their value at job 10 at the end, and RSS without
growth from job 10 on: its least-squares slope over jobs 10 to 100, times the 90 jobs, under 1%
of RSS at job 10. The slope over the second half (jobs 50 to 100) is printed beside it, for
information. The in-process variants also print which object types grew between job 10 and
the end (``gc.get_objects()`` counted by type: a few hundred are the last job's items still in
the stages' hands), which is where to look when RSS does grow; ``--tracemalloc`` adds the top
lines of ``tracemalloc``'s comparison of the same two moments (slower).

Every job is checked to have ended ``completed`` with all its subjobs; nothing is timed as a
pass/fail, and CPU time is printed for information only.

Run it alone with ``python -m benchmarks.endurance [--jobs 100] [--n 1000] [--width 10]``;
``--only engine|daemon`` runs one face.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import gc
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from ganga_async import ArgSplitter, Engine, Executable, Job, Local, Status
from ganga_async.service import AsyncGangaService

from ._harness import Row, bench_config, clean_env, common_options, fmt_bytes, print_table, scratch

EXE = "/bin/true"
JOBS = 100
WIDTH = 10
EVERY = 10
SETTLE = 0.5
"""Seconds the engine is left alone before each sample."""
RSS_LIMIT = 0.01
"""RSS may grow by less than this fraction of its value at job 10 over jobs 10 to 100, at its
least-squares rate over those jobs: flat once the first tenth of the jobs has warmed it up."""

_TASKS_CODE = ("import asyncio as _a, gc as _g\n"
               "print(sum(1 for _o in _g.get_objects() if isinstance(_o, _a.Task) and not _o.done()))")
"""What the daemon runs (``send_cmd``) to count its tasks not done."""


@dataclasses.dataclass
class Sample:
    """One look at the process running the engine, after ``jobs`` jobs ended."""

    jobs: int
    rss: int
    fds: int
    threads: int
    tasks: int
    cpu: float
    submitting: float = 0.0
    """The longest any wave since the previous sample took from its first ``submit`` to its
    last one returning: under a second, its jobs ran together; several seconds, the later ones
    reached the runner only as the earlier ended (see docs/benchmarks.md, figure 6)."""


@dataclasses.dataclass
class Series:
    """The samples of one variant, and what the in-process variants found growing."""

    name: str
    start: int
    """The job count from which the series must be flat (the first tenth warms up)."""
    samples: list[Sample] = dataclasses.field(default_factory=list)
    growth: list[str] = dataclasses.field(default_factory=list)
    wall: float = 0.0

    @property
    def judged(self) -> list[Sample]:
        """The samples from job :attr:`start` on."""
        return [s for s in self.samples if s.jobs >= self.start]

    def slope(self, field: str, since: int = 0) -> float:
        """Least-squares slope per job of ``field`` over the samples from job :attr:`start`
        (or ``since``, if later) on."""
        points = [(s.jobs, float(getattr(s, field))) for s in self.judged if s.jobs >= since]
        if len(points) < 2:
            return 0.0
        mx = sum(x for x, _ in points) / len(points)
        my = sum(y for _, y in points) / len(points)
        sxx = sum((x - mx) ** 2 for x, _ in points)
        return sum((x - mx) * (y - my) for x, y in points) / sxx

    def verdicts(self) -> dict[str, bool]:
        """Whether each series is flat from job ``EVERY`` on (see the module's documentation)."""
        first, last = self.judged[0], self.judged[-1]
        span = last.jobs - first.jobs
        flat = {field: getattr(last, field) <= getattr(first, field)
                for field in ("fds", "threads", "tasks")}
        flat["rss"] = self.slope("rss") * span < RSS_LIMIT * first.rss
        return flat


def proc_status(pid: int) -> tuple[int, int, int]:
    """RSS in bytes, threads and open file descriptors of process ``pid``."""
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return (int(fields["VmRSS"].split()[0]) * 1024, int(fields["Threads"]),
            len(os.listdir(f"/proc/{pid}/fd")))


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` (its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def type_counts() -> collections.Counter[str]:
    """Live objects tracked by the garbage collector, counted by type."""
    gc.collect()
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def grown(before: collections.Counter[str], after: collections.Counter[str], top: int = 8) -> list[str]:
    """The types whose count grew most from ``before`` to ``after``."""
    diff = [(after[k] - before.get(k, 0), k) for k in after]
    return [f"{name} +{delta}" for delta, name in sorted(diff, reverse=True)[:top] if delta > 0]


async def settle() -> None:
    """Let the engine's event subscribers read what the last job left queued, and collect the
    garbage, so that every sample sees the engine at rest."""
    await anyio.sleep(SETTLE)
    gc.collect()


def master(n: int, width: int) -> Job:
    return Job(application=Executable(exe=EXE), backend=Local(max_concurrent=width),
               splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))


def job_file(n: int, width: int) -> dict[str, Any]:
    return {"application": {"type": "Executable", "exe": EXE},
            "backend": {"type": "Local", "max_concurrent": width},
            "splitter": {"type": "ArgSplitter", "args": [[str(i)] for i in range(n)]}}


async def drive(jobs: int, wave: int, every: int, run_wave: Callable[[int], Awaitable[float]],
                look: Callable[[int], Awaitable[Sample]], series: Series) -> None:
    """Run ``jobs`` jobs, ``wave`` at a time, sampling with ``look`` after every ``every``;
    ``run_wave`` returns how long its submissions took."""
    started = time.perf_counter()
    done = 0
    submitting = 0.0
    while done < jobs:
        size = min(wave, jobs - done)
        submitting = max(submitting, await run_wave(size))
        done += size
        if done % every == 0 or done == jobs:
            sample = await look(done)
            sample.submitting, submitting = submitting, 0.0
            series.samples.append(sample)
            _print_sample(series.name, sample, wave)
    series.wall = time.perf_counter() - started


def run_engine(root: Path, jobs: int, n: int, wave: int, every: int, trace: bool) -> Series:
    """The engine in this process."""
    name = f"engine, {wave} at a time" if wave > 1 else "engine, one at a time"
    series = Series(name, start=max(every, jobs // 10))
    width = 8 if wave == 1 else 4
    counts: list[collections.Counter[str]] = []
    snapshots: list[tracemalloc.Snapshot] = []
    cpu0 = time.process_time()

    async def main() -> None:
        async with Engine(root / "gangadir", config=bench_config(root)) as engine:

            async def run_wave(size: int) -> float:
                begun = time.perf_counter()
                batch = [await engine.submit(master(n, width)) for _ in range(size)]
                submitting = time.perf_counter() - begun
                async with anyio.create_task_group() as tg:
                    for job in batch:
                        tg.start_soon(engine.wait, job)
                for job in batch:
                    _check(job.status, len(job.subjobs), n, job.fqid)
                return submitting

            async def look(done: int) -> Sample:
                await settle()
                rss, threads, fds = proc_status(os.getpid())
                tasks = sum(1 for t in asyncio.all_tasks() if not t.done())
                sample = Sample(done, rss, fds, threads, tasks, time.process_time() - cpu0)
                if done == series.start or done == jobs:
                    counts.append(type_counts())
                    if trace:
                        snapshots.append(tracemalloc.take_snapshot())
                return sample

            await drive(jobs, wave, every, run_wave, look, series)

    if trace:
        tracemalloc.start(10)
    try:
        anyio.run(main, backend="asyncio")
    finally:
        if trace:
            tracemalloc.stop()
    if len(counts) == 2:
        series.growth = grown(counts[0], counts[1])
    if len(snapshots) == 2:
        for stat in snapshots[1].compare_to(snapshots[0], "lineno")[:8]:
            series.growth.append(f"tracemalloc: {stat}")
    return series


def run_daemon(root: Path, jobs: int, n: int, wave: int, every: int) -> Series:
    """A daemon started with ``service start``, driven through ``AsyncGangaService``."""
    name = f"daemon, {wave} at a time" if wave > 1 else "daemon, one at a time"
    series = Series(name, start=max(every, jobs // 10))
    width = 8 if wave == 1 else 4
    gangadir = root / "gangadir"
    cli = [sys.executable, "-m", "ganga_async.cli", "--gangadir", str(gangadir), "service"]
    env = clean_env(root)
    subprocess.run([*cli, "start"], env=env, check=True, capture_output=True)
    try:
        async def main() -> None:
            async with AsyncGangaService(gangadir, autostart=False) as gs:
                pid = int((await gs.ping())["pid"])
                # The probe's own first send_cmd (the daemon's console, compiling) costs about
                # 0.8 MiB once: paid here, before any job, not between the samples of jobs 10 and 20.
                await gs.send_cmd(_TASKS_CODE)
                cpu0 = process_cpu(pid)
                spec = job_file(n, width)

                async def run_wave(size: int) -> float:
                    begun = time.perf_counter()
                    ids = [(await gs.submit(spec))["id"] for _ in range(size)]
                    submitting = time.perf_counter() - begun
                    results: list[dict[str, Any]] = []

                    async def wait(job_id: int) -> None:
                        results.append(await gs.wait(job_id))

                    async with anyio.create_task_group() as tg:
                        for job_id in ids:
                            tg.start_soon(wait, job_id)
                    for result in results:
                        _check(result["status"], result["subjobs"], n, result["id"])
                    return submitting

                async def look(done: int) -> Sample:
                    await anyio.sleep(SETTLE)
                    rss, threads, fds = proc_status(pid)
                    tasks = int(await gs.send_cmd(_TASKS_CODE))
                    return Sample(done, rss, fds, threads, tasks, process_cpu(pid) - cpu0)

                await drive(jobs, wave, every, run_wave, look, series)

        anyio.run(main, backend="asyncio")
    finally:
        subprocess.run([*cli, "stop"], env=env, check=False, capture_output=True)
    return series


def _check(status: Any, subjobs: int, n: int, which: Any) -> None:
    if str(status) != Status.COMPLETED or subjobs != n:
        raise RuntimeError(f"job {which} ended {status} with {subjobs} subjobs, not completed with {n}")


def _print_sample(name: str, s: Sample, wave: int) -> None:
    waves = f"  slowest wave submitted in {s.submitting:5.2f}s" if wave > 1 else ""
    print(f"  {name:<24} after {s.jobs:>4} jobs: RSS {fmt_bytes(s.rss):>10}  fds {s.fds:>3}  "
          f"threads {s.threads:>2}  tasks {s.tasks:>3}  CPU {s.cpu:7.1f}s{waves}", flush=True)


def report(series: Series, jobs: int, every: int) -> list[Row]:
    """Print the slopes and verdicts of one variant; its table rows."""
    if len(series.judged) < 3:
        print(f"  {series.name}: too few samples for a slope (needs {3 * every} jobs or more)")
        return [Row("6 endurance", series.name, "too few jobs")]
    first, last = series.judged[0], series.judged[-1]
    flat = series.verdicts()
    span = last.jobs - first.jobs
    rss_slope = series.slope("rss")
    print(f"  {series.name}: {jobs} jobs in {series.wall:.1f}s; from job {first.jobs} to {last.jobs}: "
          f"RSS {rss_slope / 1024:+.1f} KiB/job ({rss_slope * span / first.rss:+.2%} of "
          f"{fmt_bytes(first.rss)} over {span} jobs, limit {RSS_LIMIT:.0%}), "
          f"fds {first.fds}->{last.fds}, threads {first.threads}->{last.threads}, "
          f"tasks {first.tasks}->{last.tasks}")
    half = last.jobs // 2
    late = series.slope("rss", since=half)
    print(f"    RSS from job {half} to {last.jobs}: {late / 1024:+.1f} KiB/job "
          f"({late * span / first.rss:+.2%} at that rate over {span} jobs, for information); "
          f"CPU per job from job {first.jobs}: "
          f"{(last.cpu - first.cpu) / span * 1e3:.0f} ms")
    for line in series.growth:
        print(f"    grew: {line}")
    growth = ", ".join(f"{field} {'flat' if ok else 'GROWS'}" for field, ok in flat.items())
    return [Row("6 endurance", series.name, f"RSS {rss_slope / 1024:+.1f} KiB/job",
                f"{rss_slope * span / first.rss:+.2%} over jobs {first.jobs}-{last.jobs} "
                f"({late * span / first.rss:+.2%} at the rate of {half}-{last.jobs}); {growth}",
                f"RSS slope {first.jobs}-{last.jobs} x {span} < {RSS_LIMIT:.0%}; fds/threads/tasks "
                f"not above job {first.jobs}'s",
                "ok" if all(flat.values()) else "MISSED")]


def measure(n: int = 1000, rounds: int = 1, tmpdir: str | None = None, jobs: int | None = None,
            width: int = WIDTH, every: int = EVERY, only: Sequence[str] = ("engine", "daemon"),
            trace: bool = False) -> list[Row]:
    """Run every variant once (``rounds`` is ignored: one long run is the figure) and return
    the table's rows. Called with ``n`` only (as ``python -m benchmarks`` does), the number of
    jobs follows it: 100 jobs of 1,000, or 10 jobs of 100 with ``--quick``."""
    if jobs is None:
        jobs = JOBS if n >= 1000 else JOBS // 10
        every = every if n >= 1000 else 1
    width = min(width, max(1, jobs // 5))  # at least five samples of the waves
    print(f"endurance: {jobs} jobs of {n} x {EXE}, one at a time and {width} at a time, "
          f"sampled every {every} jobs; {_load()}")
    rows: list[Row] = []
    variants: list[tuple[str, Callable[[Path], Series]]] = []
    if "engine" in only:
        variants += [("engine", lambda r: run_engine(r, jobs, n, 1, every, trace)),
                     ("engine", lambda r: run_engine(r, jobs, n, width, every, trace))]
    if "daemon" in only:
        variants += [("daemon", lambda r: run_daemon(r, jobs, n, 1, every)),
                     ("daemon", lambda r: run_daemon(r, jobs, n, width, every))]
    for _, variant in variants:
        with scratch(tmpdir, "endurance") as root:
            series = variant(root)
        rows += report(series, jobs, every)
    print(f"  {_load()}")
    return rows


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> None:
    parser = common_options(__doc__, rounds=1)
    parser.add_argument("--jobs", type=int, default=JOBS, help="jobs in all (default: %(default)s)")
    parser.add_argument("--n", type=int, default=1000, help="subjobs per job (default: %(default)s)")
    parser.add_argument("--width", type=int, default=WIDTH,
                        help="jobs at once in the concurrent variants (default: %(default)s)")
    parser.add_argument("--every", type=int, default=EVERY,
                        help="jobs between samples (default: %(default)s)")
    parser.add_argument("--only", choices=["engine", "daemon"], action="append", default=None)
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also compare tracemalloc snapshots (in-process variants; slower)")
    args = parser.parse_args(argv)
    print_table(measure(args.n, args.rounds, args.tmpdir, args.jobs, args.width, args.every,
                        args.only or ("engine", "daemon"), args.tracemalloc))


if __name__ == "__main__":
    main()
