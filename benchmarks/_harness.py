"""What every benchmark shares: interleaved repetitions, statistics, the result table.

These machines are noisy, so a figure is never one measurement. :func:`interleave` runs each
variant once per round, rotating the order from round to round so that no variant always runs
first (cold caches) or last (after the others heated the machine), and keeps every sample.
:class:`Samples` reports the best and the median; ratios are taken best-to-best (the least
disturbed run of each) and median-to-median (shown alongside, as a check of the first).

A benchmark prints its details as it goes and returns :class:`Row` values, which
``python -m benchmarks`` gathers into one compact table. Nothing here asserts a timing.

Also here: scratch directories, the configuration every benchmark engine runs with (the
shipped defaults only) and the environment of child interpreters, and :class:`Milestones`,
a logging handler that notes when the engine logs the events a figure is timed to.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import logging
import os
import pstats
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

from ganga_async import Config, load_config
from ganga_async._log import USER_LOGGER

__all__ = [
    "Milestones", "Row", "Samples", "bench_config", "clean_env", "common_options", "fmt_bytes",
    "fmt_s", "interleave", "listen_to_engine", "print_profile", "print_table", "scratch",
    "verdict",
]


@dataclasses.dataclass
class Samples:
    """The repeated measurements of one variant, in seconds (or any unit)."""

    name: str
    values: list[float] = dataclasses.field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def summary(self) -> str:
        runs = " ".join(fmt_s(v) for v in self.values)
        return f"best {fmt_s(self.best)}  median {fmt_s(self.median)}  (runs: {runs})"


@dataclasses.dataclass
class Row:
    """One line of the result table: a measured figure, its ratio to a baseline and the target."""

    figure: str
    what: str
    value: str
    ratio: str = ""
    target: str = ""
    verdict: str = ""


def interleave(rounds: int, variants: Mapping[str, Callable[[], float]]) -> dict[str, Samples]:
    """Run every variant once per round, rotating the order, and collect what each returns.

    Before each run the file systems are synced, so that no run pays for writing back what
    the one before it left in the page cache.
    """
    samples = {name: Samples(name) for name in variants}
    names = list(variants)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            os.sync()
            samples[name].values.append(variants[name]())
    return samples


def verdict(value: float, limit: float, *, inclusive: bool = True) -> str:
    """``ok`` when ``value`` is within ``limit``, ``MISSED`` otherwise (printed, never asserted)."""
    met = value <= limit if inclusive else value < limit
    return "ok" if met else "MISSED"


def fmt_s(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f}ms"
    return f"{seconds:.3f}s"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def print_table(rows: Sequence[Row]) -> None:
    """Print the rows as an aligned plain-text table."""
    header = Row("figure", "what", "value", "ratio", "target", "verdict")
    cells = [dataclasses.astuple(r) for r in (header, *rows)]
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(header.__dict__))]
    for n, line in enumerate(cells):
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def print_profile(profiler: cProfile.Profile, title: str, top: int) -> None:
    """Print the ``top`` functions of a profile by their own time, indented under ``title``."""
    print(f"\n  {title}, top {top} by own time:")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print("\n".join("    " + line for line in out.getvalue().splitlines()[4:] if line.strip()))


def common_options(description: str | None, rounds: int = 3) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=rounds,
                        help="repetitions of each variant, interleaved (default: %(default)s)")
    parser.add_argument("--tmpdir", default=None,
                        help="where scratch gangadirs and output trees go (default: the system's)")
    return parser


def run_main(measure: Callable[..., list[Row]], description: str | None,
             argv: Sequence[str] | None, *, n: int, n_help: str = "subjobs",
             rounds: int = 3, profile: str | None = None) -> list[Row]:
    """The command line of a benchmark whose figure has one size: ``--n``, ``--rounds`` and
    ``--tmpdir`` (and ``--profile``/``--top``, passed on to ``measure``, when ``profile`` says
    what the profiled run is); runs ``measure`` and prints its table."""
    parser = common_options(description, rounds)
    parser.add_argument("--n", type=int, default=n, help=f"{n_help} (default: %(default)s)")
    if profile is not None:
        parser.add_argument("--profile", action="store_true", help=f"add {profile}")
        parser.add_argument("--top", type=int, default=25,
                            help="functions the profile lists (default: %(default)s)")
    args = parser.parse_args(argv)
    extra = (args.profile, args.top) if profile is not None else ()
    rows = measure(args.n, args.rounds, args.tmpdir, *extra)
    print()
    print_table(rows)
    return rows


@contextmanager
def scratch(base: str | None, prefix: str) -> Iterator[Path]:
    """A fresh directory, removed afterwards (outside any timed window)."""
    path = Path(tempfile.mkdtemp(prefix=f"ganga-bench-{prefix}-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bench_config(root: Path) -> Config:
    """The shipped defaults only: no user file, no ``GANGA_ASYNC_*`` variables."""
    return load_config(empty_user_file(root), environ={})


def empty_user_file(root: Path) -> Path:
    path = root / "empty-config.toml"
    if not path.exists():
        path.write_text("")
    return path


def clean_env(root: Path, *, bytecode: bool = False) -> dict[str, str]:
    """The environment for child interpreters: ours, without any ganga-async configuration.

    With ``bytecode``, children cache compiled bytecode under ``root`` (``PYTHONPYCACHEPREFIX``)
    even where ``PYTHONDONTWRITEBYTECODE`` is set, so that after one warm-up run they start as
    an installed package does, from ``.pyc`` files, whatever this checkout has compiled.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANGA_ASYNC_")}
    env["GANGA_ASYNC_CONFIG"] = str(empty_user_file(root))
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    return env


class Milestones(logging.Handler):
    """Notes when the engine logs ``job split`` and when a master becomes ``submitted``.

    ``emit`` runs in the event loop's thread, inside the engine's own call to the logger, so
    the time it notes is the moment the engine reached the milestone.
    """

    def __init__(self, on_split: Callable[[], None] | None = None) -> None:
        super().__init__(logging.INFO)
        self.on_split = on_split
        self.split_seconds = 0.0
        self.split_at = 0.0
        self.submitted_at = 0.0
        self.split = anyio.Event()
        self.submitted = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        event: dict[str, Any] = getattr(record, "structlog_event", None) or {}
        if event.get("event") == "job split":
            self.split_at = time.perf_counter()
            self.split_seconds = float(event["seconds"])
            if self.on_split is not None:
                self.on_split()
            self.split.set()
        elif event.get("new") == "submitted" and event.get("job_id") is not None:
            self.submitted_at = time.perf_counter()
            self.submitted.set()


@contextmanager
def listen_to_engine(handler: logging.Handler) -> Iterator[None]:
    """Route the INFO records of the engine's logger and of its console lines (where a job's
    status changes are told, ``USER_LOGGER``) to ``handler`` only, for the duration."""
    loggers = [logging.getLogger("ganga_async.engine"), logging.getLogger(USER_LOGGER)]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, (level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
