"""``python -m benchmarks``: run every figure, print details as they come, then one table.

Options: ``--rounds N`` for every benchmark (each has its own default otherwise), ``--only
NAME`` (repeatable) to run some of them, ``--quick`` for a smoke run at a tenth of the sizes
(not the figures), ``--tmpdir DIR`` for the scratch directories, and ``--peers`` to add the
optional comparison with Dask and Parsl (:mod:`benchmarks.peers`, which needs a separate
interpreter with them installed and skips itself otherwise).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence

from . import (
    condor_submit,
    dashboard_browser,
    dask_echo,
    endurance,
    engine_cpu,
    event_fanout,
    fresh_start,
    local_echo,
    many_jobs,
    monitor_sweep,
    open_summary,
    peers,
    postprocessing,
    service_rpc,
    shareref_actor,
    slurm_submit,
    split_million,
    split_persist,
    tasks_chain,
)
from ._harness import Row, fmt_s, print_table

BENCHMARKS: dict[str, tuple[Callable[..., list[Row]], int, int]] = {
    "local_echo": (local_echo.measure, 1000, local_echo.ROUNDS),
    "split_persist": (split_persist.measure, 100_000, 3),
    "open_summary": (open_summary.measure, 100_000, 5),
    "service_rpc": (service_rpc.measure, 200, 3),
    "slurm_submit": (slurm_submit.measure, 1000, 3),
    "condor_submit": (condor_submit.measure, 1000, 3),
    "dask_echo": (dask_echo.measure, 1000, 2),
    "shareref_actor": (shareref_actor.measure, 10_000, 3),
    "postprocessing": (postprocessing.measure, 10_000, 3),
    "tasks_chain": (tasks_chain.measure, 1000, 3),
    "engine_cpu": (engine_cpu.measure, 100_000, 3),
    "monitor_sweep": (monitor_sweep.measure, 100_000, 3),
    "split_million": (split_million.measure, 1_000_000, 2),
    "dashboard_browser": (dashboard_browser.measure, 100_000, 5),
    "fresh_start": (fresh_start.measure, 1000, 5),
    "fresh_start_10k": (fresh_start.measure_10k, 10_000, 3),
    "many_jobs": (many_jobs.measure, 100_000, 5),
    "endurance": (endurance.measure, 1000, 1),
    "event_fanout": (event_fanout.measure, 10_000, 2),
}
"""name: (measure function, figure size, default rounds)"""

OPTIONAL: dict[str, tuple[Callable[..., list[Row]], int, int]] = {
    "peers": (peers.measure, 1000, 3),
}


def main(argv: Sequence[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=None,
                        help="repetitions of each variant, interleaved (default: per benchmark)")
    parser.add_argument("--only", action="append", choices=[*BENCHMARKS, *OPTIONAL],
                        default=None, help="run only this benchmark (repeatable)")
    parser.add_argument("--peers", action="store_true",
                        help="add the optional comparison with Dask and Parsl")
    parser.add_argument("--quick", action="store_true",
                        help="a tenth of the sizes: a smoke run, not the figures")
    parser.add_argument("--tmpdir", default=None, help="where scratch directories go")
    args = parser.parse_args(argv)
    print(f"ganga-async benchmarks: Python {platform.python_version()} on {platform.machine()}, "
          f"{_cpus()} CPUs, {platform.platform(terse=True)}; {_load()}")
    rows: list[Row] = []
    started = time.perf_counter()
    names = args.only or [*BENCHMARKS, *(OPTIONAL if args.peers else ())]
    for name in names:
        measure, size, rounds = {**BENCHMARKS, **OPTIONAL}[name]
        print()
        rows += measure(n=size // 10 if args.quick else size, rounds=args.rounds or rounds,
                        tmpdir=args.tmpdir)
    print(f"\nall measured in {fmt_s(time.perf_counter() - started)}; {_load()}"
          f"{' (--quick: sizes are a tenth of the figures)' if args.quick else ''}\n")
    print_table(rows)
    return rows


def _cpus() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main(sys.argv[1:])
