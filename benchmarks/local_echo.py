"""Figure 1: 1,000 local ``/bin/echo`` subjobs, 8 at a time, against the best bare loop.

What is measured, in one process and one run:

- **engine**: a master ``Job(Executable(exe="/bin/echo"), Local(max_concurrent=8),
  ArgSplitter(args=[[str(i)] for i in range(n)]))`` in a fresh gangadir with the shipped
  configuration. The clock runs from ``await engine.submit(job)`` until ``await engine.wait(job)``
  returns with every subjob completed. That includes validating, persisting and splitting the
  job, starting the Local backend's runner process (once per engine, as every engine does on
  first use), spawning every process through it and the engine learning that each ended.
  Opening and closing the engine are outside the window (closing is printed on its own).
- **bare asyncio**: one event loop, ``asyncio.create_subprocess_exec`` under a semaphore of 8.
- **bare threads**: 8 threads, each taking the next index and running
  ``subprocess.Popen(...).wait()``.
- **runner alone** (a diagnostic, not a baseline): the engine's local runner
  (``workers/local_runner.py``) started and fed directly over its socket with every command at
  once, as one group limited to 8, as the Local driver does. Engine minus runner alone is what
  the engine process adds; runner alone minus bare asyncio is what the runner's design costs.

Every variant keeps the same outputs: each process gets its own directory holding its stdout
and stderr files (the runner also logs each start and end in the job's status log). After each
run, outside the window, every stdout is read back and checked, so a run that lost output
cannot pass as fast.
The variants create a directory per process and files in it, and how much that costs depends
on the file system and its recent past (ext4 without a journal scans recently deleted inodes on
every create), so the cost of one create is measured and printed first. The variants are
interleaved over ``--rounds`` rounds; the figure is engine / best bare, using
each variant's best run (the median ratio is printed too). Target: at most 1.25.

For each variant the CPU time is printed per process (this one, the runner, the echo
processes), with the median *refill gap*: from one process ending to the next one starting in
its slot, read from the status log. ``--profile`` adds one engine run under cProfile (this
process only) and prints where its time goes.

Run it alone with ``python -m benchmarks.local_echo [--n 1000] [--width 8] [--rounds 3]``.
"""

from __future__ import annotations

import asyncio
import cProfile
import dataclasses
import functools
import json
import os
import resource
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from ganga_async import ArgSplitter, Engine, Executable, Job, Local, Status
from ganga_async._resources import shipped
from ganga_async._workspace import job_dir_of
from ganga_async.backends.local import STATUS_LOG, _start_runner

from ._harness import (
    Row,
    Samples,
    bench_config,
    common_options,
    fmt_s,
    interleave,
    print_profile,
    print_table,
    scratch,
    verdict,
)

ECHO = "/bin/echo"
TARGET = 1.25
ROUNDS = 7
"""Rounds by default: with fewer, one lucky round of a bare loop moves the best-to-best ratio by
up to 0.1, as much as the margin measured."""


@dataclasses.dataclass
class Run:
    """One run of one variant: its wall time and where the CPU went.

    ``cpu_self`` is this process (all its threads), ``cpu_runner`` the local runner process
    (user, system) when there is one, ``cpu_children`` the echo processes. ``refill`` is the
    median time from one process ending to the next one starting in its slot. ``close`` is
    the time ``Engine.__aexit__`` took.
    """

    wall: float
    cpu_self: float = 0.0
    cpu_runner: tuple[float, float] | None = None
    cpu_children: float = 0.0
    refill: float | None = None
    close: float | None = None

    def describe(self) -> str:
        parts = [f"this process {fmt_s(self.cpu_self)}"]
        if self.cpu_runner is not None:
            user, system = self.cpu_runner
            parts.append(f"runner {fmt_s(user)} user + {fmt_s(system)} sys")
        parts.append(f"echo processes {fmt_s(self.cpu_children)}")
        text = "CPU: " + ", ".join(parts)
        if self.refill is not None:
            text += f"; refill gap {fmt_s(self.refill)}"
        if self.close is not None:
            text += f"; close {fmt_s(self.close)}"
        return text


def run_engine(root: Path, n: int, width: int,
               profiler: cProfile.Profile | None = None) -> Run:
    """One engine run in a fresh gangadir under ``root``."""
    config = bench_config(root)
    gangadir = root / f"gangadir-{time.monotonic_ns()}"
    outputs: list[Path] = []

    async def main() -> Run:
        async with Engine(gangadir, config=config) as engine:
            job = Job(application=Executable(exe=ECHO), backend=Local(max_concurrent=width),
                      splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
            cpu = _rusage()
            if profiler is not None:
                profiler.enable()
            start = time.perf_counter()
            await engine.submit(job)
            await engine.wait(job)
            wall = time.perf_counter() - start
            if profiler is not None:
                profiler.disable()
            run = Run(wall, cpu_self=_rusage()[0] - cpu[0])
            if job.status is not Status.COMPLETED:
                raise RuntimeError(f"the engine's job ended {job.status}: {job.subjobs!r}")
            outputs.extend(sub.outputdir for sub in job.subjobs)
            _runner_figures(run, job_dir_of(job.outputdir) / STATUS_LOG, n, width)
            closing = time.perf_counter()
        run.close = time.perf_counter() - closing
        return run

    run = anyio.run(main, backend="asyncio")
    check_outputs(outputs)
    return run


def run_runner_alone(root: Path, n: int, width: int) -> Run:
    """The local runner fed directly: every command at once, as one group of ``width`` at a
    time (the runner queues the rest), then read events until ``n`` processes exited."""
    base = root / f"runner-{time.monotonic_ns()}"
    runner = shipped("workers", "local_runner.py")
    outputs = [base / str(i) for i in range(n)]

    async def main() -> Run:
        base.mkdir()
        cpu = _rusage()
        start = time.perf_counter()
        ours, theirs = socket.socketpair()
        with theirs:
            # started as the Local driver starts it, waiting for its daemonising fork
            await asyncio.to_thread(_start_runner, runner, theirs, base)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        writer.write(b"".join(json.dumps({
            "op": "run", "key": f"1.{i}", "group": "1", "limit": width, "log": str(base / STATUS_LOG),
            "argv": [ECHO, str(i)], "env": {}, "workdir": str(base / str(i) / "work"),
            "scratch": str(base / "work"), "outputdir": str(outputs[i]), "inputs": [], "outputs": [],
        }).encode() + b"\n" for i in range(n)))
        done = 0
        while done < n:
            if json.loads(await reader.readline())["ev"] == "exited":
                done += 1
        wall = time.perf_counter() - start
        run = Run(wall, cpu_self=_rusage()[0] - cpu[0])
        _runner_figures(run, base / STATUS_LOG, n, width)
        writer.close()
        await writer.wait_closed()
        return run

    run = asyncio.run(main())
    check_outputs(outputs)
    return run


def run_bare_asyncio(root: Path, n: int, width: int) -> Run:
    """The bare asyncio loop: ``create_subprocess_exec`` under a semaphore of ``width``."""
    base = root / f"asyncio-{time.monotonic_ns()}"
    base.mkdir()

    async def one(sem: asyncio.Semaphore, i: int) -> None:
        async with sem:
            d = os.path.join(base, str(i))
            os.mkdir(d)
            # the floor opens its files in the loop, as the local runner does
            with open(os.path.join(d, "stdout"), "wb") as out, \
                    open(os.path.join(d, "stderr"), "wb") as err:  # noqa: ASYNC230
                proc = await asyncio.create_subprocess_exec(
                    ECHO, str(i), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            await proc.wait()

    async def main() -> float:
        sem = asyncio.Semaphore(width)
        start = time.perf_counter()
        await asyncio.gather(*(one(sem, i) for i in range(n)))
        return time.perf_counter() - start

    cpu = _rusage()
    wall = asyncio.run(main())
    run = _bare_run(wall, cpu)
    check_outputs([base / str(i) for i in range(n)])
    return run


def run_bare_threads(root: Path, n: int, width: int) -> Run:
    """The bare thread pool: ``width`` threads, each running ``Popen(...).wait()`` in turn."""
    base = root / f"threads-{time.monotonic_ns()}"
    base.mkdir()
    indices = iter(range(n))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(indices, None)
            if i is None:
                return
            d = os.path.join(base, str(i))
            os.mkdir(d)
            with open(os.path.join(d, "stdout"), "wb") as out, \
                    open(os.path.join(d, "stderr"), "wb") as err:
                subprocess.Popen([ECHO, str(i)], stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=err).wait()

    cpu = _rusage()
    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(width)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run = _bare_run(time.perf_counter() - start, cpu)
    check_outputs([base / str(i) for i in range(n)])
    return run


def inode_cost(root: Path, n: int = 300) -> float:
    """CPU seconds per directory or empty file created under ``root`` (kept until the end, as
    a deletion would slow later creations on some file systems)."""
    base = root / "inode-cost"
    base.mkdir()
    start = time.process_time()
    for i in range(n):
        os.mkdir(base / str(i))
        os.close(os.open(base / str(i) / "f", os.O_WRONLY | os.O_CREAT, 0o644))
    return (time.process_time() - start) / (2 * n)


def check_outputs(dirs: Sequence[Path], *, empty_stderr: bool = True) -> None:
    """Every directory holds ``stdout`` with its own index and a ``stderr``, empty unless
    ``empty_stderr`` is false (Parsl writes the command it ran there)."""
    for i, d in enumerate(dirs):
        text = (d / "stdout").read_text()
        size = (d / "stderr").stat().st_size
        if text != f"{i}\n" or (empty_stderr and size):
            raise RuntimeError(f"output of process {i} in {d} is wrong: stdout {text!r}, "
                               f"stderr {size} bytes")


def _rusage() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its waited-for children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _bare_run(wall: float, before: tuple[float, float]) -> Run:
    after = _rusage()
    return Run(wall, cpu_self=after[0] - before[0], cpu_children=after[1] - before[1])


def _runner_figures(run: Run, log: Path, n: int, width: int) -> None:
    """Fill in the runner's CPU (from /proc, while it still runs) and the refill gap, from the
    status log the runner wrote."""
    for _ in range(100):
        # The engine may hear of the last end a moment before its line is in the log.
        records = [json.loads(line) for line in log.read_bytes().splitlines()]
        if sum(r["ev"] == "exited" for r in records) >= n:
            break
        time.sleep(0.01)
    try:
        runner_pid = next(r["runner_pid"] for r in records if r["ev"] == "accepted")
        with open(f"/proc/{runner_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, StopIteration, IndexError):
        pass
    else:
        tick = os.sysconf("SC_CLK_TCK")
        utime, stime, cutime, cstime = (int(x) / tick for x in fields[11:15])
        run.cpu_runner = (utime, stime)
        run.cpu_children = cutime + cstime
    starts = sorted(r["t"] for r in records if r["ev"] == "started")
    ends = sorted(r["t"] for r in records if r["ev"] == "exited")
    if len(starts) > width:
        gaps = [starts[k] - ends[k - width] for k in range(width, len(starts))]
        run.refill = statistics.median(gaps)


def measure(n: int = 1000, width: int = 8, rounds: int = ROUNDS, tmpdir: str | None = None,
            profile: bool = False, top: int = 25) -> list[Row]:
    """Run the interleaved rounds, print the details and return the table rows."""
    print(f"local_echo: {n} x {ECHO}, {width} at a time, {rounds} interleaved rounds")
    variants = {
        "engine": run_engine,
        "bare asyncio": run_bare_asyncio,
        "bare threads": run_bare_threads,
        "runner alone": run_runner_alone,
    }
    runs: dict[str, list[Run]] = {name: [] for name in variants}
    with scratch(tmpdir, "local-echo") as root:
        print(f"  creating a directory or file here costs {fmt_s(inode_cost(root))} of CPU "
              "(ext4 without a journal: far more within ~30 s of deleting many files)")
        def timed(name: str) -> float:
            run = variants[name](root, n, width)
            runs[name].append(run)
            return run.wall

        samples = interleave(rounds, {name: functools.partial(timed, name) for name in variants})
        if profile:
            profiler = cProfile.Profile()
            profiled = run_engine(root, n, width, profiler)
    for name, s in samples.items():
        best = min(runs[name], key=lambda r: r.wall)
        print(f"  {name:<13} {s.summary()}")
        print(f"  {'':<13} best run's {best.describe()}")
    eng = samples["engine"]
    bare: Samples = min(samples["bare asyncio"], samples["bare threads"], key=lambda s: s.best)
    bare_median = min(samples["bare asyncio"].median, samples["bare threads"].median)
    ratio = eng.best / bare.best
    runner = samples["runner alone"]
    print(f"  engine / best bare ({bare.name}): {ratio:.2f} best-to-best, "
          f"{eng.median / bare_median:.2f} median-to-median (target <= {TARGET}); "
          f"runner alone / best bare: {runner.best / bare.best:.2f}")
    if profile:
        print_profile(profiler, f"cProfile of one engine run ({fmt_s(profiled.wall)} under the "
                      "profiler)", top)
    return [
        Row("1 local_echo", f"engine, {n} subjobs", fmt_s(eng.best),
            f"{ratio:.2f}x best bare", f"<= {TARGET}x", verdict(ratio, TARGET)),
        Row("1 local_echo", "bare asyncio", fmt_s(samples["bare asyncio"].best)),
        Row("1 local_echo", "bare threads", fmt_s(samples["bare threads"].best)),
        Row("1 local_echo", "runner alone (diagnostic)", fmt_s(runner.best),
            f"{runner.best / bare.best:.2f}x best bare"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    parser = common_options(__doc__, rounds=ROUNDS)
    parser.add_argument("--n", type=int, default=1000, help="subjobs (default: %(default)s)")
    parser.add_argument("--width", type=int, default=8,
                        help="processes at a time (default: %(default)s)")
    parser.add_argument("--profile", action="store_true",
                        help="add one engine run under cProfile and print its hot spots")
    parser.add_argument("--top", type=int, default=25,
                        help="functions the profile lists (default: %(default)s)")
    args = parser.parse_args(argv)
    rows = measure(args.n, args.width, args.rounds, args.tmpdir, args.profile, args.top)
    print()
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
