"""Figures of the Slurm backend: submitting a 1,000-subjob master, and one monitoring sweep.

Runs on the real test cluster of ``scripts/slurm-up.sh`` (``SLURM_CONF`` from the environment or
from ``$GANGA_SLURM_HOME/env``); without a cluster that answers it prints why and measures
nothing. The tasks are submitted held (``--hold``), so they stay pending (active) and run
nothing, and they are cancelled after each round.

What is measured, interleaved over ``--rounds`` rounds:

- **engine, one array**: ``Job(Executable(exe="/bin/true"), Slurm(extra_options=["--hold"]),
  ArgSplitter(args=[[str(i)] for i in range(n)]))`` submitted to an open engine in a fresh
  gangadir; the clock runs from ``await engine.submit(job)`` until the master is ``submitted``
  (every subjob has its array task id), as the engine logs it. That window holds validating,
  persisting and splitting the job, writing the manifest and the batch script, and the one
  ``sbatch --array``. Afterwards every subjob is checked to hold ``<array>_<index>``.
- **n separate sbatch calls**: ``sbatch --parsable --hold --wrap true``, one after the other,
  as a backend without arrays submits (Ganga's Slurm backend runs one ``sbatch`` per subjob);
  every printed id is checked.

Then, with the engine's ``n`` array tasks pending, one monitoring sweep (``BatchDriver.sweep``,
the sweep the engine's monitor asks for): the number of Slurm commands it ran and the CPU time of this
process (all threads) and its wall time; the sweep must have found every task (nothing
changed, no command failed).

Run it alone with ``python -m benchmarks.slurm_submit [--n 1000] [--rounds 3]``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from ganga_async import ArgSplitter, Engine, Executable, Job, Slurm, Status
from ganga_async.backends._batch import BatchDriver, CommandRunner

from ._harness import (
    Milestones,
    Row,
    Samples,
    bench_config,
    fmt_s,
    interleave,
    listen_to_engine,
    run_main,
    scratch,
    verdict,
)

TARGET_SECONDS = 1.0


def find_cluster() -> str | None:
    """Why no cluster answers, or None when one does (SLURM_CONF is then set)."""
    if "SLURM_CONF" not in os.environ:
        env = Path(os.environ.get("GANGA_SLURM_HOME", "/tmp/ganga-async-slurm")) / "env"
        if env.exists():
            os.environ["SLURM_CONF"] = env.read_text().split("'")[1]
    try:
        done = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no Slurm commands here ({exc})"
    if "UP" not in done.stdout:
        return f"slurmctld does not answer: {(done.stderr or done.stdout).strip()}"
    return None


class SweepFigures:
    """What one monitoring sweep over the pending array cost."""

    def __init__(self) -> None:
        self.commands: list[int] = []
        self.cpu: Samples = Samples("sweep cpu")
        self.wall: Samples = Samples("sweep wall")


def cancel(ids: Sequence[str]) -> None:
    for start in range(0, len(ids), 500):
        subprocess.run(["scancel", *ids[start:start + 500]], check=False, capture_output=True)


def run_engine(root: Path, n: int, sweeps: SweepFigures) -> float:
    async def main() -> float:
        milestones = Milestones()
        config = bench_config(root)
        gangadir = root / f"gangadir-{time.monotonic_ns()}"
        job = Job(application=Executable(exe="/bin/true"), backend=Slurm(extra_options=["--hold"]),
                  splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
        with listen_to_engine(milestones):
            async with Engine(gangadir, config=config) as engine:
                started = time.perf_counter()
                await engine.submit(job)
                with anyio.fail_after(120):
                    await milestones.submitted.wait()
                seconds = milestones.submitted_at - started
                ids = [s.backend_id or "" for s in job.subjobs]
                array = ids[0].partition("_")[0]
                try:
                    assert ids == [f"{array}_{i}" for i in range(n)], "a subjob lacks its task id"
                    assert job.status is Status.SUBMITTED
                    driver = engine._backends.drivers["Slurm"]
                    assert isinstance(driver, BatchDriver) and isinstance(driver.runner, CommandRunner)
                    calls = driver.runner.calls
                    cpu, wall = time.process_time(), time.perf_counter()
                    changed = await driver.sweep()
                    sweeps.cpu.values.append(time.process_time() - cpu)
                    sweeps.wall.values.append(time.perf_counter() - wall)
                    sweeps.commands.append(driver.runner.calls - calls)
                    assert changed == 0 and job.status is Status.SUBMITTED, (changed, job.subjobs.counts())
                finally:
                    cancel([array])
        return seconds

    return anyio.run(main, backend="asyncio")


def run_sbatch(n: int) -> float:
    ids = []
    started = time.perf_counter()
    for _ in range(n):
        done = subprocess.run(["sbatch", "--parsable", "--hold", "--output=/dev/null", "--wrap", "true"],
                              capture_output=True, text=True, check=True)
        ids.append(done.stdout.strip())
    seconds = time.perf_counter() - started
    try:
        assert all(i.isdigit() for i in ids) and len(set(ids)) == n, "sbatch printed no job id"
    finally:
        cancel(ids)
    return seconds


def measure(n: int, rounds: int, tmpdir: str | None) -> list[Row]:
    print(f"slurm_submit: a {n}-subjob master on Slurm, against {n} separate sbatch calls; "
          f"{rounds} rounds")
    why = find_cluster()
    if why is not None:
        print(f"  skipped: {why}; start the test cluster with scripts/slurm-up.sh")
        return [Row("slurm_submit", "skipped: no Slurm cluster", "-")]
    logging.getLogger("ganga_async").setLevel(logging.WARNING)
    sweeps = SweepFigures()
    with scratch(tmpdir, "slurm-submit") as root:
        samples = interleave(rounds, {
            "engine, one array": lambda: run_engine(root, n, sweeps),
            f"{n} x sbatch": lambda: run_sbatch(n),
        })
    engine, separate = samples["engine, one array"], samples[f"{n} x sbatch"]
    for s in samples.values():
        print(f"  {s.name:<18} {s.summary()}")
    ratio = separate.best / engine.best
    print(f"  {n} x sbatch / engine: {ratio:.1f} best-to-best, "
          f"{separate.median / engine.median:.1f} median-to-median")
    print(f"  one sweep over {n} pending array tasks: {sweeps.commands} Slurm commands per sweep; "
          f"engine CPU {sweeps.cpu.summary()}; wall {sweeps.wall.summary()}")
    return [
        Row("slurm_submit", f"engine: {n}-subjob master to submitted", fmt_s(engine.best),
            f"{ratio:.1f}x faster than {n} x sbatch", f"< {TARGET_SECONDS:g} s",
            verdict(engine.best, TARGET_SECONDS, inclusive=False)),
        Row("slurm_submit", f"{n} separate sbatch calls", fmt_s(separate.best)),
        Row("slurm_submit", f"one sweep over {n} active tasks: commands", str(max(sweeps.commands)),
            "", "1", verdict(max(sweeps.commands), 1)),
        Row("slurm_submit", "one sweep: engine CPU time", fmt_s(sweeps.cpu.best),
            f"wall {fmt_s(sweeps.wall.best)}"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return run_main(measure, __doc__, argv, n=1000)


if __name__ == "__main__":
    main()
