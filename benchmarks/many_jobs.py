"""Figure 5: a repository of 100,000 separate jobs (a Ganga user's gangadir after a year).

Two gangadirs are built once, each holding ``n`` (100,000) or ``n / 10`` (10,000) unsplit
jobs: one job is added through an engine (``engine.add``) to get the row exactly as the engine
stores it, and the others are copies of that row written through the repository's own
``write`` in one transaction, with their own id, name (``analysis-<id mod 100>``), backend id
and times and a mix of statuses: one in 20 ``failed``, one in 50 ``killed``, the last 100
``new``, the rest ``completed``. Then each of these runs in a new interpreter (the venv's),
timed from spawn to exit, interleaved over ``--rounds`` rounds:

- ``python -c pass``: the interpreter's floor;
- **engine summary** (``n`` jobs): opens ``Engine(gangadir, monitoring=False)``, awaits
  ``engine.summary()`` and prints one line per job; target under 1 s;
- **cli jobs** (``n`` jobs): ``ganga-async jobs --gangadir DIR`` with ``[Service] autostart =
  false`` (the command opens an engine that only reads); target under 1 s. With the shipped
  ``autostart = true`` the first ``jobs`` starts the daemon, which then answers every later one;
- **gpi jobs** (``n / 10`` jobs): ``python -c "from ganga_async.gpi import *; print(repr(jobs))"``
  with ``GANGA_ASYNC_GANGADIR`` set: what typing ``jobs`` at a new prompt costs; target under
  0.5 s. Also run on the ``n``-job gangadir, for information;
- **gpi calls** (``n`` jobs): a new interpreter imports the interface and prints ``jobs``, then
  times ``jobs(12345)`` and ``jobs.select(status="failed")`` (each its first call in that
  session), and, for information, printing that selection; target under 50 ms each.

Each child's CPU time (user + system) is printed beside its wall time: on a busy machine it
is the steadier figure. Every child gets an environment without ``GANGA_ASYNC_*`` variables but
the ones named here, starts from compiled bytecode (a scratch ``PYTHONPYCACHEPREFIX`` filled by
one untimed warm-up run of each command), and its output is checked (the number of jobs
listed, the job found, the number selected).

Run it alone with ``python -m benchmarks.many_jobs [--n 100000] [--rounds 5]``.
"""

from __future__ import annotations

import functools
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from ganga_async import Engine, Executable, Job, Local

from ._harness import (
    Row,
    Samples,
    bench_config,
    clean_env,
    fmt_s,
    interleave,
    run_main,
    scratch,
    verdict,
)

SUMMARY_TARGET = 1.0
GPI_TARGET = 0.5
CALL_TARGET = 0.05
PICK = 12345
"""The job ``jobs(PICK)`` loads (the middle of the repository when it is smaller)."""

SUMMARY_CODE = """\
import sys
import anyio
from ganga_async import Engine

async def main():
    async with Engine(sys.argv[1], monitoring=False) as engine:
        rows = await engine.summary()
        for row in rows:
            print(f"{row['id']:>6} {row['status']:<10} {row['application']:<12} "
                  f"{row['backend']:<8} {row['name']}")

anyio.run(main, backend="asyncio")
"""

GPI_JOBS = "from ganga_async.gpi import *\nprint(repr(jobs))\n"

GPI_CALLS = """\
import json, sys, time
from ganga_async.gpi import *
print(repr(jobs).splitlines()[0], file=sys.stderr)
pick = int(sys.argv[1])
t0 = time.perf_counter()
j = jobs(pick)
t1 = time.perf_counter()
failed = jobs.select(status="failed")
t2 = time.perf_counter()
table = repr(failed)
t3 = time.perf_counter()
print(json.dumps({"get": t1 - t0, "select": t2 - t1, "select_repr": t3 - t2, "id": j.id,
                  "status": str(j.status), "failed": len(failed.ids()),
                  "lines": len(table.splitlines())}))
"""


def status_of(i: int, n: int) -> str:
    """The status of job ``i`` of ``n``: the last 100 new, then one in 20 failed, one in 50
    killed, the others completed."""
    if i >= n - 100:
        return "new"
    if i % 20 == 7:
        return "failed"
    if i % 50 == 3:
        return "killed"
    return "completed"


def build(root: Path, n: int) -> tuple[Path, float]:
    """A gangadir of ``n`` unsplit jobs; it and the seconds building took."""
    gangadir = root / f"jobs-{n}"
    start = time.perf_counter()

    async def main() -> None:
        async with Engine(gangadir, config=bench_config(root), monitoring=False) as engine:
            template = await engine.add(Job(name="analysis-0",
                                            application=Executable(exe="/bin/echo", args=["x"]),
                                            backend=Local()))
            repo = engine.repository
            await repo.flush()
            cursor = await repo.db.execute(
                "SELECT comment, application, backend, spec FROM jobs WHERE id=?", (template.id,))
            comment, application, backend, spec = await cursor.fetchone()  # type: ignore[misc]
            await cursor.close()
            t0 = time.time() - 365 * 86400
            rows = (_row(i, n, t0, comment, application, backend, spec) for i in range(1, n))
            await repo.write(
                [("INSERT OR REPLACE INTO meta VALUES ('next_job_id', ?)", (str(n),))],
                [("INSERT INTO jobs (id, name, comment, status, application, backend, spec, "
                  "n_subjobs, backend_id, exitcode, submit_counter, times) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)", rows)])

    anyio.run(main, backend="asyncio")
    return gangadir, time.perf_counter() - start


def _row(i: int, n: int, t0: float, comment: str, application: str, backend: str,
         spec: str) -> tuple[Any, ...]:
    status = status_of(i, n)
    t = t0 + i * 300
    if status == "new":
        return (i, f"analysis-{i % 100}", comment, status, application, backend, spec, None,
                None, 0, json.dumps({"new": t}))
    times = {"new": t, "submitting": t + 1, "submitted": t + 2, "running": t + 3, status: t + 60}
    exitcode = {"completed": 0, "failed": 1, "killed": -15}[status]
    return (i, f"analysis-{i % 100}", comment, status, application, backend, spec,
            str(100_000 + i), exitcode, 1, json.dumps(times))


def run_command(argv: Sequence[str], env: dict[str, str], expect: str,
                result: list[dict[str, Any]] | None = None,
                cpu: list[float] | None = None) -> float:
    """Wall seconds of one child; its stdout must contain ``expect``. With ``result``, the
    last line of its stdout (JSON) is appended to it; with ``cpu``, the child's CPU seconds
    (user + system, its own children included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if done.returncode != 0 or expect not in done.stdout:
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {done.returncode}, without "
                           f"{expect!r}: stdout {done.stdout[-300:]!r}; stderr "
                           f"{done.stderr[-800:]!r}")
    if result is not None:
        result.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return elapsed


def measure(n: int = 100_000, rounds: int = 5, tmpdir: str | None = None) -> list[Row]:
    """Build the gangadirs, time the children interleaved, print, return the rows."""
    small = n // 10
    pick = PICK if PICK < n else n // 2
    print(f"many_jobs: repositories of {n} and {small} separate jobs, {rounds} interleaved rounds")
    python = sys.executable
    with scratch(tmpdir, "many-jobs") as root:
        big_dir, t_big = build(root, n)
        small_dir, t_small = build(root, small)
        size = sum(p.stat().st_size for p in (big_dir / "repository").rglob("*") if p.is_file())
        print(f"  built: {n} jobs in {fmt_s(t_big)} ({size / 2**20:.1f} MiB), {small} jobs in "
              f"{fmt_s(t_small)}")
        env = clean_env(root, bytecode=True)
        no_auto = root / "no-autostart.toml"
        no_auto.write_text("[Service]\nautostart = false\n")
        env["GANGA_ASYNC_CONFIG"] = str(no_auto)
        gpi_env = {**env, "GANGA_ASYNC_GANGADIR": str(small_dir)}
        gpi_big_env = {**env, "GANGA_ASYNC_GANGADIR": str(big_dir)}
        n_failed = sum(status_of(i, n) == "failed" for i in range(n))
        calls: list[dict[str, Any]] = []
        commands = {
            "python -c pass": functools.partial(run_command, [python, "-c", "pass"], env, ""),
            f"engine summary, {n} jobs": functools.partial(
                run_command, [python, "-c", SUMMARY_CODE, str(big_dir)], env,
                f"{n - 1:>6} new"),
            f"cli jobs, {n} jobs": functools.partial(
                run_command, [python, "-m", "ganga_async.cli", "jobs", "--gangadir", str(big_dir)],
                env, f"{n - 1}"),
            f"gpi jobs, {small} jobs": functools.partial(
                run_command, [python, "-c", GPI_JOBS], gpi_env, f"Registry: jobs ({small} jobs)"),
            f"gpi jobs, {n} jobs": functools.partial(
                run_command, [python, "-c", GPI_JOBS], gpi_big_env, f"Registry: jobs ({n} jobs)"),
            f"gpi calls, {n} jobs": functools.partial(
                run_command, [python, "-c", GPI_CALLS, str(pick)], gpi_big_env,
                f'"failed": {n_failed}', calls),
        }
        for warm_up in commands.values():
            warm_up()
        calls.clear()
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        samples = interleave(rounds, {name: functools.partial(command, cpu=cpus[name])
                                      for name, command in commands.items()})
    floor = samples["python -c pass"]
    for s in samples.values():
        print(f"  {s.name:<26} {s.summary()}  +{fmt_s(s.best - floor.best)} over the floor; "
              f"CPU best {fmt_s(min(cpus[s.name]))}")
    call_samples = {key: Samples(f"jobs({pick})" if key == "get" else key,
                                 [c[key] for c in calls])
                    for key in ("get", "select", "select_repr")}
    call_samples["select"].name = 'jobs.select(status="failed")'
    call_samples["select_repr"].name = f"printing that selection ({n_failed} jobs)"
    for s in call_samples.values():
        print(f"  {s.name:<40} {s.summary()}")
    rows = []
    for name, s in samples.items():
        target = (SUMMARY_TARGET if name.startswith(("engine summary", "cli jobs"))
                  else GPI_TARGET if name == f"gpi jobs, {small} jobs" else None)
        rows.append(Row("5 many_jobs", name, fmt_s(s.best),
                        "" if s is floor else f"+{fmt_s(s.best - floor.best)} over python",
                        "" if target is None else f"< {target:g} s",
                        "" if target is None else verdict(s.best, target, inclusive=False)))
    for key, s in call_samples.items():
        target = CALL_TARGET if key != "select_repr" else None
        rows.append(Row("5 many_jobs", f"{s.name}, {n} jobs", fmt_s(s.best),
                        f"median {fmt_s(statistics.median(s.values))}",
                        "" if target is None else f"< {target * 1000:g} ms",
                        "" if target is None else verdict(s.best, target, inclusive=False)))
    return rows


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return run_main(measure, __doc__, argv, n=100_000, rounds=5,
                    n_help="jobs in the large repository; the small one has a tenth")


if __name__ == "__main__":
    main()
