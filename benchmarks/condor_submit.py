"""Figures of the Condor backend: submitting a 1,000-subjob master, and one monitoring sweep.

Runs on the real test pool of ``scripts/condor-up.sh`` (its client settings from the environment
or from ``$HTCONDOR_HOME/htcondor.env``); without a schedd that answers it prints why and
measures nothing. Every proc is submitted with ``requirements = False``, so it stays idle
(active) and runs nothing; each round removes what it submitted.

What is measured, interleaved over ``--rounds`` rounds:

- **engine, one cluster**: ``Job(Executable(exe="/bin/true"), Condor(requirements="False"),
  ArgSplitter(args=[[str(i)] for i in range(n)]))`` submitted to an open engine in a fresh
  gangadir; the clock runs from ``await engine.submit(job)`` until the master is ``submitted``
  (every subjob has its ``cluster.proc`` id), as the engine logs it. That window holds
  validating, persisting and splitting the job, writing the manifest and the script, and the one
  ``Schedd.submit(..., count=n)``. Afterwards every subjob is checked to hold ``<cluster>.<index>``.
- **n separate condor_submit calls**: ``condor_submit`` of a one-proc submit file, one after the
  other, as Ganga's Condor backend submits each job (run through the pool's wrapper, which
  enters its chroot); every printed cluster id is checked.

Then, with the engine's ``n`` procs idle, one monitoring sweep (``CondorDriver.sweep``, the sweep
the engine's monitor asks for): the schedd calls it made, the CPU time of this process (all
threads) and its wall time; the sweep must have found every proc (nothing changed).

Run it alone with ``python -m benchmarks.condor_submit [--n 1000] [--rounds 3]``.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from ganga_async import ArgSplitter, Condor, Engine, Executable, Job, Status
from ganga_async.backends.condor import CondorDriver

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
SEPARATE_NAME = "ga-bench-separate"


def find_pool() -> str | None:
    """Why no pool answers, or None when one does (its client settings are then in the
    environment)."""
    env = Path(os.environ.get("HTCONDOR_HOME", "/var/tmp/ganga-async-htcondor")) / "htcondor.env"
    if env.exists():
        for name, value in re.findall(r"export (\w+)='([^']*)'", env.read_text()):
            os.environ.setdefault(name, value)
    if "CONDOR_CONFIG" not in os.environ:
        return "no pool configured (no CONDOR_CONFIG, no $HTCONDOR_HOME/htcondor.env)"
    try:
        import htcondor2
    except ImportError:
        return "the htcondor2 bindings are missing: pip install 'ganga-async[condor]'"
    htcondor2.reload_config()
    try:
        htcondor2.Schedd().query("False", ["ClusterId"])
    except Exception as exc:  # the bindings raise HTCondorException and plain errors
        return f"the schedd does not answer: {exc}"
    return None


def remove(constraint: str) -> None:
    import htcondor2
    htcondor2.Schedd().act(htcondor2.JobAction.Remove, constraint)


class SweepFigures:
    """What one monitoring sweep over the idle cluster cost."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.cpu: Samples = Samples("sweep cpu")
        self.wall: Samples = Samples("sweep wall")


def run_engine(root: Path, n: int, sweeps: SweepFigures) -> float:
    async def main() -> float:
        milestones = Milestones()
        config = bench_config(root)
        gangadir = root / f"gangadir-{time.monotonic_ns()}"
        job = Job(application=Executable(exe="/bin/true"), backend=Condor(requirements="False"),
                  splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
        with listen_to_engine(milestones):
            async with Engine(gangadir, config=config) as engine:
                started = time.perf_counter()
                await engine.submit(job)
                with anyio.fail_after(120):
                    await milestones.submitted.wait()
                seconds = milestones.submitted_at - started
                ids = [s.backend_id or "" for s in job.subjobs]
                cluster = ids[0].partition(".")[0]
                try:
                    assert ids == [f"{cluster}.{i}" for i in range(n)], "a subjob lacks its proc id"
                    assert job.status is Status.SUBMITTED
                    driver = engine._backends.drivers["Condor"]
                    assert isinstance(driver, CondorDriver)
                    calls = driver.calls
                    cpu, wall = time.process_time(), time.perf_counter()
                    changed = await driver.sweep()
                    sweeps.cpu.values.append(time.process_time() - cpu)
                    sweeps.wall.values.append(time.perf_counter() - wall)
                    sweeps.calls.append(driver.calls - calls)
                    assert changed == 0 and job.status is Status.SUBMITTED, (changed, job.subjobs.counts())
                finally:
                    remove(f"ClusterId == {int(cluster)}")
        return seconds

    return anyio.run(main, backend="asyncio")


def run_condor_submit(root: Path, n: int) -> float:
    folder = Path(root) / f"separate-{time.monotonic_ns()}"
    folder.mkdir()
    submit_file = folder / "job.sub"
    submit_file.write_text(f"executable = /bin/true\nrequirements = False\nbatch_name = {SEPARATE_NAME}\n"
                           f"initialdir = {folder}\nqueue\n")
    command = str(Path(os.environ["HTCONDOR_BIN"]) / "condor_submit")
    clusters = []
    started = time.perf_counter()
    try:
        for _ in range(n):
            done = subprocess.run([command, str(submit_file)], capture_output=True, text=True, check=True)
            found = re.search(r"submitted to cluster (\d+)", done.stdout)
            clusters.append(found.group(1) if found else "")
        seconds = time.perf_counter() - started
        assert all(clusters) and len(set(clusters)) == n, "condor_submit printed no cluster id"
    finally:
        remove(f'JobBatchName == "{SEPARATE_NAME}"')
    return seconds


def measure(n: int, rounds: int, tmpdir: str | None) -> list[Row]:
    print(f"condor_submit: a {n}-subjob master on HTCondor, against {n} separate condor_submit calls; "
          f"{rounds} rounds")
    why = find_pool()
    if why is not None:
        print(f"  skipped: {why}; start the test pool with scripts/condor-up.sh")
        return [Row("condor_submit", "skipped: no HTCondor pool", "-")]
    logging.getLogger("ganga_async").setLevel(logging.WARNING)
    sweeps = SweepFigures()
    # The pool's jobs see only its shared directories: the scratch must lie under /tmp.
    with scratch(tmpdir or "/tmp", "condor-submit") as root:
        samples = interleave(rounds, {
            "engine, one cluster": lambda: run_engine(root, n, sweeps),
            f"{n} x condor_submit": lambda: run_condor_submit(root, n),
        })
    engine, separate = samples["engine, one cluster"], samples[f"{n} x condor_submit"]
    for s in samples.values():
        print(f"  {s.name:<20} {s.summary()}")
    ratio = separate.best / engine.best
    print(f"  {n} x condor_submit / engine: {ratio:.1f} best-to-best, "
          f"{separate.median / engine.median:.1f} median-to-median")
    print(f"  one sweep over {n} idle procs: {sweeps.calls} schedd calls per sweep; "
          f"engine CPU {sweeps.cpu.summary()}; wall {sweeps.wall.summary()}")
    return [
        Row("condor_submit", f"engine: {n}-subjob master to submitted", fmt_s(engine.best),
            f"{ratio:.1f}x faster than {n} x condor_submit", f"< {TARGET_SECONDS:g} s",
            verdict(engine.best, TARGET_SECONDS, inclusive=False)),
        Row("condor_submit", f"{n} separate condor_submit calls", fmt_s(separate.best)),
        Row("condor_submit", f"one sweep over {n} active procs: schedd calls", str(max(sweeps.calls)),
            "", "1", verdict(max(sweeps.calls), 1)),
        Row("condor_submit", "one sweep: engine CPU time", fmt_s(sweeps.cpu.best),
            f"wall {fmt_s(sweeps.wall.best)}"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return run_main(measure, __doc__, argv, n=1000)


if __name__ == "__main__":
    main()
