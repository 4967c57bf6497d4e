"""Figure 3: a fresh interpreter opens a repository holding a 100,000-subjob master and prints
the ``jobs`` summary, start-up included.

The repositories are built once, through the engine and the ``Null`` backend of
``benchmarks/_null_backend.py`` (as in :mod:`benchmarks.split_persist`):

- **finished**: the master ran on ``Null(complete=True)``, so it and its 100,000 subjobs are
  ``completed``: the common case of a repository full of past work;
- **active**: the master ran on ``Null()``, so its 100,000 subjobs stay ``submitted``; an engine
  opening it finds an active job, as after a restart.

Then each of these commands runs in a new interpreter (the venv's), its wall time measured
from spawn to exit, interleaved over ``--rounds`` rounds:

- ``python -c pass``: the interpreter's floor;
- ``python -c "import ganga_async"``: the package's import cost;
- ``python -c "import anyio; from ganga_async import Engine; ..."``: opens
  ``Engine(gangadir, monitoring=False)``, awaits ``engine.summary()`` and prints one line per
  master, on the finished repository (the figure; target under 1 s) and on the active one
  (the same code, importing ``benchmarks._null_backend`` first so the engine can load the job);
- ``python -m ganga_async.cli --gangadir DIR jobs`` on the finished repository, when
  ``ganga_async/cli.py`` exists and provides ``jobs``.

Each child gets this environment without any ``GANGA_ASYNC_*`` variable and with an empty user
configuration file, and its output is checked to list the master with its 100,000 subjobs.
Children start from compiled bytecode, as an installed package does: they cache it in a
scratch ``PYTHONPYCACHEPREFIX`` (even where ``PYTHONDONTWRITEBYTECODE`` is set, as in this
project's development environment) and every command runs once, untimed, before the rounds.
One more variant, ``import ganga_async, env as is``, runs with the caller's own environment, so
the cost of a checkout whose bytecode is not cached shows beside it.

Run it alone with ``python -m benchmarks.open_summary [--n 100000] [--rounds 5]``.
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from ganga_async import Engine, Status

from ._harness import (
    Milestones,
    Row,
    bench_config,
    clean_env,
    fmt_s,
    interleave,
    listen_to_engine,
    run_main,
    scratch,
    verdict,
)
from .split_persist import make_job

TARGET_SECONDS = 1.0
REPO_ROOT = Path(__file__).resolve().parent.parent

SUMMARY_CODE = """\
import sys
import anyio
from ganga_async import Engine

async def main():
    async with Engine(sys.argv[1], monitoring=False) as engine:
        for row in await engine.summary():
            print(f"{row['id']:>5} {row['status']:<10} {row['subjobs']:>7} "
                  f"{row['application']:<12} {row['backend']:<8} {row['name']}")

anyio.run(main, backend="asyncio")
"""


def build(root: Path, n: int, *, complete: bool) -> tuple[Path, float]:
    """A gangadir holding one ``n``-subjob master, finished or active; returns it and the
    seconds building took."""
    gangadir = root / ("finished" if complete else "active")
    start = time.perf_counter()

    async def main() -> None:
        milestones = Milestones()
        async with Engine(gangadir, config=bench_config(root)) as engine:
            job = make_job(n, complete=complete)
            with listen_to_engine(milestones):
                await engine.submit(job)
                if complete:
                    await engine.wait(job)
                else:
                    await milestones.submitted.wait()
            wanted = Status.COMPLETED if complete else Status.SUBMITTED
            if job.status is not wanted:
                raise RuntimeError(f"building {gangadir} left the master {job.status}")

    anyio.run(main, backend="asyncio")
    return gangadir, time.perf_counter() - start


def run_command(argv: Sequence[str], env: dict[str, str], expect: str | None) -> float:
    """Wall seconds of one child process; its output must contain ``expect``."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or (expect is not None and expect not in done.stdout):
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {done.returncode}; stdout "
                           f"{done.stdout[-300:]!r}; stderr {done.stderr[-600:]!r}")
    return elapsed


def cli_jobs_available() -> bool:
    """True when ``ganga_async/cli.py`` is importable and lists a ``jobs`` command."""
    if importlib.util.find_spec("ganga_async.cli") is None:
        return False
    done = subprocess.run([sys.executable, "-m", "ganga_async.cli", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    return done.returncode == 0 and " jobs " in done.stdout


def measure(n: int = 100_000, rounds: int = 5, tmpdir: str | None = None) -> list[Row]:
    """Build the repositories, time the children interleaved, print, return the rows."""
    print(f"open_summary: repositories holding one {n}-subjob master, {rounds} interleaved rounds")
    python = sys.executable
    with scratch(tmpdir, "open-summary") as root:
        env = clean_env(root, bytecode=True)
        finished, t_finished = build(root, n, complete=True)
        active, t_active = build(root, n, complete=False)
        size = sum(p.stat().st_size for p in (finished / "repository").rglob("*") if p.is_file())
        print(f"  built: finished in {fmt_s(t_finished)}, active in {fmt_s(t_active)}; "
              f"finished repository {size / 2**20:.1f} MiB")
        expect = f" {n:>7} "
        as_is = clean_env(root)
        commands: dict[str, tuple[list[str], str | None]] = {
            "python -c pass": ([python, "-c", "pass"], None),
            "import ganga_async": ([python, "-c", "import ganga_async"], None),
            "import ganga_async, env as is": ([python, "-c", "import ganga_async"], None),
            "engine summary, finished": ([python, "-c", SUMMARY_CODE, str(finished)], expect),
            "engine summary, active": (
                [python, "-c", "import benchmarks._null_backend\n" + SUMMARY_CODE, str(active)],
                expect),
        }
        if cli_jobs_available():
            commands["cli jobs, finished"] = (
                [python, "-m", "ganga_async.cli", "--gangadir", str(finished), "jobs"], str(n))
        else:
            print("  ganga_async.cli with a `jobs` command is not available: not timed")
        runs = {
            name: functools.partial(run_command, argv, as_is if "as is" in name else env, expect)
            for name, (argv, expect) in commands.items()
        }
        try:
            for warm_up in runs.values():
                warm_up()
            samples = interleave(rounds, runs)
        finally:
            # With the shipped configuration `jobs` autostarts the gangadir's daemon, as a
            # user's first command does: it must not outlive the scratch directory.
            subprocess.run([python, "-m", "ganga_async.cli", "--gangadir", str(finished), "service",
                            "stop"], env=env, cwd=REPO_ROOT, capture_output=True, check=False)
    floor = samples["python -c pass"]
    for s in samples.values():
        print(f"  {s.name:<29} {s.summary()}  {s.best / floor.best:.1f}x floor, "
              f"+{fmt_s(s.best - floor.best)}")
    rows = []
    for name, s in samples.items():
        ratio = "" if s is floor else f"{s.best / floor.best:.1f}x python -c pass"
        target, met = "", ""
        if name.startswith(("engine summary", "cli jobs")):
            target, met = f"< {TARGET_SECONDS:g} s", verdict(s.best, TARGET_SECONDS,
                                                             inclusive=False)
        rows.append(Row("3 open_summary", name, fmt_s(s.best), ratio, target, met))
    return rows


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return run_main(measure, __doc__, argv, n=100_000, n_help="subjobs of the master", rounds=5)


if __name__ == "__main__":
    main()
