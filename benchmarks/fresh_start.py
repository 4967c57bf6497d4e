"""Figure 1 as a user meets it: every run a fresh process that imports, opens, submits, waits.

:mod:`benchmarks.local_echo` times the engine inside one warm process. A user's script or
``ganga-async submit --wait`` pays more: the interpreter's start, importing ganga_async, opening
the repository (creating its schema in a new gangadir), the first job's lazy imports and
plugin look-ups, starting the Local runner, and closing. Here each run of each variant is one
new process, timed from spawn to exit, doing ``n`` ``/bin/echo`` processes ``width`` at a time,
each with its own directory holding its stdout and stderr:

- **engine script**: ``python -c SCRIPT``: ``import ganga_async``, ``async with Engine(new
  gangadir)``, submit ``Job(Executable(exe="/bin/echo"), Local(max_concurrent=width),
  ArgSplitter(...))``, ``await engine.wait(job)``, close. It also reports when each of these
  steps ended (same monotonic clock as this process), which gives the breakdown printed;
- **cli, own engine**: ``ganga-async submit JOB.toml --wait`` with ``[Service] autostart =
  false``: the command opens an engine of its own for as long as it runs;
- **cli, daemon running**: the same command while the gangadir's daemon already runs (started
  before the window, stopped after it): the command is a client of the daemon's engine;
- **cli, autostart**: the shipped configuration (``autostart = true``) on a new gangadir: the
  command starts the daemon, then submits through it (a user's first command of the day);
- **bare threads** / **bare asyncio**: a fresh ``python -c`` doing the same work with ``width``
  threads running ``Popen(...).wait()`` / ``asyncio.create_subprocess_exec`` under a
  semaphore, the floors of :mod:`benchmarks.local_echo`.

The figure is each engine variant's best over the best bare floor's best (median-to-median
beside it); target at most 1.25. Children start from compiled bytecode, as an installed package
does (``PYTHONPYCACHEPREFIX`` under the scratch directory, filled by one untimed warm-up run of
every variant on 20 subjobs), with an empty user configuration and no ``GANGA_ASYNC_*`` variable. Every run's
stdout files are checked after it, outside the window. ``--profile`` adds one engine script run
under cProfile (the child process) and prints where its time goes; ``--compare TREE`` adds the
engine script importing ganga_async from another source tree (an earlier commit, exported), in
the same interleaved rounds, for a before-and-after on one machine state.

The floor is CPU-bound (two cores busy with the echo processes and the processes starting
them), so every variant's best run is shown with its CPU time: the process's own, and that of
the children it waited for (the bare floors' echo processes); for the engine script and
``cli, own engine`` also the Local runner's own and its processes' (on Linux this process is
made the subreaper of its descendants while they run, so that the runner, which daemonises,
is reaped here and its times read from ``/proc`` before that).

Run it alone with ``python -m benchmarks.fresh_start [--n 1000] [--width 8] [--rounds 5]``;
``python -m benchmarks`` runs it at 1,000 x 8 (``fresh_start``) and at 10,000 x 32
(``fresh_start_10k``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import json
import os
import pstats
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ganga_async.backends.local import STATUS_LOG

from ._harness import (
    Row,
    clean_env,
    common_options,
    fmt_s,
    interleave,
    print_table,
    scratch,
    verdict,
)

TARGET = 1.25
ECHO = "/bin/echo"

ENGINE_SCRIPT = """\
import time
marks = {}
import json, sys
import anyio
from ganga_async import ArgSplitter, Engine, Executable, Job, Local
marks["import"] = time.monotonic()

async def main():
    n, width, gangadir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    async with Engine(gangadir) as engine:
        marks["open"] = time.monotonic()
        job = Job(application=Executable(exe="/bin/echo"), backend=Local(max_concurrent=width),
                  splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
        await engine.submit(job)
        marks["submit"] = time.monotonic()
        await engine.wait(job)
        marks["wait"] = time.monotonic()
        if str(job.status) != "completed":
            sys.exit(f"the job ended {job.status}")
    marks["close"] = time.monotonic()
    marks["cpu"] = time.process_time()
    print(json.dumps(marks))

anyio.run(main, backend="asyncio")
"""

BARE_THREADS = """\
import os, subprocess, sys, threading
n, width, base = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.mkdir(base)
indices = iter(range(n))
lock = threading.Lock()

def worker():
    while True:
        with lock:
            i = next(indices, None)
        if i is None:
            return
        d = os.path.join(base, str(i))
        os.mkdir(d)
        with open(os.path.join(d, "stdout"), "wb") as out, \\
                open(os.path.join(d, "stderr"), "wb") as err:
            subprocess.Popen(["/bin/echo", str(i)], stdin=subprocess.DEVNULL, stdout=out,
                             stderr=err).wait()

threads = [threading.Thread(target=worker) for _ in range(width)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""

BARE_ASYNCIO = """\
import asyncio, os, subprocess, sys
n, width, base = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.mkdir(base)

async def one(sem, i):
    async with sem:
        d = os.path.join(base, str(i))
        os.mkdir(d)
        with open(os.path.join(d, "stdout"), "wb") as out, \\
                open(os.path.join(d, "stderr"), "wb") as err:
            proc = await asyncio.create_subprocess_exec(
                "/bin/echo", str(i), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        await proc.wait()

async def main():
    sem = asyncio.Semaphore(width)
    await asyncio.gather(*(one(sem, i) for i in range(n)))

asyncio.run(main())
"""


class Fresh:
    """The variants, each a fresh process in a new directory under ``root``."""

    def __init__(self, root: Path, n: int, width: int) -> None:
        self.root, self.n, self.width = root, n, width
        self.python = sys.executable
        self.cli = [self.python, "-m", "ganga_async.cli"]
        self.env = clean_env(root, bytecode=True)
        self.env_auto = dict(self.env)
        no_auto = root / "no-autostart.toml"
        no_auto.write_text("[Service]\nautostart = false\n")
        self.env["GANGA_ASYNC_CONFIG"] = str(no_auto)
        self.jobfile = root / "job.toml"
        args = ", ".join(f'["{i}"]' for i in range(n))
        self.jobfile.write_text(
            f'[application]\ntype = "Executable"\nexe = "{ECHO}"\n'
            f'[backend]\ntype = "Local"\nmax_concurrent = {width}\n'
            f'[splitter]\ntype = "ArgSplitter"\nargs = [{args}]\n')
        self.breakdown: list[dict[str, float]] = []
        self.cpu: dict[str, list[tuple[float, float]]] = {}
        """Per variant and run: CPU seconds of the process and of the children it waited for."""
        self.runner: dict[str, list[tuple[float, float]]] = {}
        """Per engine variant and run: CPU seconds of its Local runner and of the runner's
        processes (where this process can adopt it: Linux)."""

    def fresh(self, tag: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=self.root)) / "d"

    def _spawn(self, name: str, argv: Sequence[str], env: dict[str, str],
               cwd: str | None = None) -> tuple[float, float, str]:
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            start = time.monotonic()
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, text=True, cwd=cwd)
            own, children = exit_cpu(proc.pid)  # before it is reaped, with its times in /proc
            proc.wait()
            wall = time.monotonic() - start
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        if proc.returncode != 0:
            # A command's report (the job's final status and reason) is on its stdout.
            raise RuntimeError(f"{name}: {' '.join(argv[:5])} ... exited {proc.returncode}: "
                               f"stdout: {stdout[-800:]} stderr: {stderr[-800:]}")
        self.cpu.setdefault(name, []).append((own, children))
        return start, wall, stdout

    def _adopting(self, name: str, gangadir: Path, run: Callable[[], float]) -> float:
        """``run()``, with this process the subreaper of its descendants meanwhile, so that the
        Local runner (which daemonises) is its child; then the runner's CPU (its own, and its
        processes') once it has exited, read before it is reaped."""
        adopting = set_subreaper(True)
        try:
            wall = run()
        finally:
            if adopting:
                set_subreaper(False)
        logs = list((gangadir / "workspace").glob(f"*/0/{STATUS_LOG}"))
        if adopting and logs:
            with logs[0].open() as f:
                pid = json.loads(f.readline()).get("runner_pid")
            if isinstance(pid, int):
                self.runner.setdefault(name, []).append(exit_cpu(pid))
                os.waitpid(pid, 0)
        return wall

    def engine_script(self, name: str = "engine script", checkout: str | None = None) -> float:
        """The engine script's run; with ``checkout``, ganga_async imported from that source
        tree instead (``--compare``)."""
        gangadir = self.fresh("script")
        spawned: list[tuple[float, float, str]] = []
        env = self.env if checkout is None else {**self.env, "PYTHONPATH": checkout}

        def run() -> float:
            # In the tree's directory: ``python -c`` puts its working directory first on the path.
            spawned.append(self._spawn(name, [
                self.python, "-c", ENGINE_SCRIPT, str(self.n), str(self.width), str(gangadir)],
                env, cwd=checkout))
            return spawned[0][1]

        try:
            self._adopting(name, gangadir, run)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{failed_subjobs(gangadir)}") from None
        start, wall, out = spawned[0]
        marks = json.loads(out.strip().splitlines()[-1])
        check_engine_outputs(gangadir, self.n)
        if checkout is not None:
            return wall
        self.breakdown.append({"start+import": marks["import"] - start,
                               "open": marks["open"] - marks["import"],
                               "submit": marks["submit"] - marks["open"],
                               "wait": marks["wait"] - marks["submit"],
                               "close": marks["close"] - marks["wait"],
                               "exit": start + wall - marks["close"], "cpu": marks["cpu"],
                               "wall": wall})
        return wall

    def _cli(self, name: str, gangadir: Path, env: dict[str, str]) -> float:
        try:
            _, wall, _ = self._spawn(name, [*self.cli, "submit", str(self.jobfile), "--wait",
                                            "--gangadir", str(gangadir)], env)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{failed_subjobs(gangadir)}") from None
        return wall

    def cli_own(self) -> float:
        gangadir = self.fresh("cli")
        wall = self._adopting("cli, own engine", gangadir,
                              lambda: self._cli("cli, own engine", gangadir, self.env))
        check_engine_outputs(gangadir, self.n)
        return wall

    def cli_daemon(self) -> float:
        gangadir = self.fresh("daemon")
        self._service("start", gangadir, self.env)
        try:
            wall = self._cli("cli, daemon running", gangadir, self.env)
        finally:
            self._service("stop", gangadir, self.env)
        check_engine_outputs(gangadir, self.n)
        return wall

    def cli_autostart(self) -> float:
        gangadir = self.fresh("auto")
        try:
            wall = self._cli("cli, autostart", gangadir, self.env_auto)
        finally:
            self._service("stop", gangadir, self.env_auto)
        check_engine_outputs(gangadir, self.n)
        return wall

    def _service(self, action: str, gangadir: Path, env: dict[str, str]) -> None:
        subprocess.run([*self.cli, "service", action, "--gangadir", str(gangadir)], env=env,
                       capture_output=True, check=True)

    def bare(self, name: str, script: str) -> float:
        base = self.fresh("bare")
        _, wall, _ = self._spawn(name, [self.python, "-c", script, str(self.n), str(self.width),
                                        str(base)], self.env)
        check_dirs(base, self.n)
        return wall

    def variants(self, cli: bool, compare: str | None = None) -> dict[str, Callable[[], float]]:
        found: dict[str, Callable[[], float]] = {"engine script": self.engine_script}
        if compare is not None:
            found["engine script, compared"] = functools.partial(
                self.engine_script, "engine script, compared", compare)
        if cli:
            found.update({"cli, own engine": self.cli_own, "cli, daemon running": self.cli_daemon,
                          "cli, autostart": self.cli_autostart})
        found["bare threads"] = functools.partial(self.bare, "bare threads", BARE_THREADS)
        found["bare asyncio"] = functools.partial(self.bare, "bare asyncio", BARE_ASYNCIO)
        return found

    def profile(self, top: int) -> None:
        """One engine script run under cProfile in the child; its top functions."""
        gangadir, out = self.fresh("profiled"), self.root / "engine.prof"
        script = self.root / "engine_script.py"
        script.write_text(ENGINE_SCRIPT)
        subprocess.run([self.python, "-m", "cProfile", "-o", str(out), str(script), str(self.n),
                        str(self.width), str(gangadir)], env=self.env, check=True,
                       capture_output=True)
        text = io.StringIO()
        pstats.Stats(str(out), stream=text).sort_stats("cumulative").print_stats(top)
        print(f"\n  cProfile of one engine script process (all of it), top {top} by cumulative "
              "time:")
        print("\n".join("    " + line for line in text.getvalue().splitlines()[4:]
                        if line.strip()))


def failed_subjobs(gangadir: Path, most: int = 5) -> str:
    """What the repository of a run that failed says of its failed subjobs (index, exit code,
    reason), read before the scratch directory goes, so that a rare failure explains itself."""
    found: list[str] = []
    for path in sorted(gangadir.glob("repository/*/jobs.sqlite")):
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT job_id, idx, exitcode, reason, backend_id FROM subjobs "
                              "WHERE reason IS NOT NULL ORDER BY job_id, idx LIMIT ?", (most,))
            found += [f"  subjob {j}.{i}: exit code {code}, reason {reason!r}, backend id {bid}"
                      for j, i, code, reason, bid in rows]
    return "failed subjobs:\n" + "\n".join(found) if found else "no subjob has a reason recorded"


def check_engine_outputs(gangadir: Path, n: int) -> None:
    """Every subjob's stdout holds its index (the master is job 0 of the new gangadir)."""
    masters = list((gangadir / "workspace").glob("*/0"))
    if len(masters) != 1:
        raise RuntimeError(f"no job 0 under {gangadir / 'workspace'}")
    check_dirs(masters[0], n)


def check_dirs(base: Path, n: int) -> None:
    for i in range(n):
        text = (base / str(i) / "stdout").read_text()
        if text != f"{i}\n" or (base / str(i) / "stderr").stat().st_size:
            raise RuntimeError(f"output of process {i} under {base} is wrong: {text!r}")


PR_SET_CHILD_SUBREAPER = 36


def set_subreaper(on: bool) -> bool:
    """Make this process the subreaper of its descendants, or no longer (Linux): an orphaned
    descendant (the daemonised Local runner) then becomes its child. False where it cannot."""
    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0,
                                                            0) == 0)
    except (OSError, AttributeError):
        return False


def exit_cpu(pid: int) -> tuple[float, float]:
    """Wait until child ``pid`` has exited, without reaping it, and return its CPU seconds:
    its own (every thread) and those of the children it waited for."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(v) / tick for v in fields[11:15])
    return utime + stime, cutime + cstime


def measure(n: int = 1000, rounds: int = 5, tmpdir: str | None = None, width: int = 8,
            cli: bool = True, profile: bool = False, top: int = 25,
            compare: str | None = None) -> list[Row]:
    """Warm up, run the interleaved rounds, print the details and return the table rows.
    With ``compare`` (a source tree holding another ``ganga_async``, such as an exported
    earlier commit), the engine script of that tree runs too, in the same rounds."""
    print(f"fresh_start: {n} x {ECHO}, {width} at a time, one fresh process per run, "
          f"{rounds} interleaved rounds")
    with scratch(tmpdir, "fresh-start") as root:
        for warm_up in Fresh(root, min(n, 20), width).variants(cli, compare).values():
            warm_up()  # compiles the bytecode every variant's children use
        fresh = Fresh(root, n, width)
        samples = interleave(rounds, fresh.variants(cli, compare))
        if profile:
            fresh.profile(top)
    for name, s in samples.items():
        best = s.values.index(s.best)
        own, children = fresh.cpu[name][best]
        cpu = f"process {fmt_s(own)}, its waited-for children {fmt_s(children)}"
        if name in fresh.runner and len(fresh.runner[name]) == len(s.values):
            runner, processes = fresh.runner[name][best]
            cpu += f", Local runner {fmt_s(runner)}, the runner's processes {fmt_s(processes)}"
        print(f"  {name:<20} {s.summary()}; best run's CPU: {cpu}")
    best_run = min(fresh.breakdown, key=lambda b: b["wall"])
    print("  engine script, best run: " + ", ".join(
        f"{k} {fmt_s(v)}" for k, v in best_run.items() if k != "wall")
        + " (cpu: the script's own process, as it closed)")
    bare = min(samples["bare threads"], samples["bare asyncio"], key=lambda s: s.best)
    bare_median = min(samples["bare threads"].median, samples["bare asyncio"].median)
    rows = []
    figure = f"1 fresh_start {n}x{width}"
    for name, s in samples.items():
        if name.startswith("bare"):
            rows.append(Row(figure, name, fmt_s(s.best)))
            continue
        ratio = s.best / bare.best
        print(f"  {name} / best bare ({bare.name}): {ratio:.2f} best-to-best, "
              f"{s.median / bare_median:.2f} median-to-median (target <= {TARGET})")
        rows.append(Row(figure, name, fmt_s(s.best), f"{ratio:.2f}x best bare",
                        f"<= {TARGET}x", verdict(ratio, TARGET)))
    return rows


def measure_10k(n: int = 10_000, rounds: int = 3, tmpdir: str | None = None) -> list[Row]:
    """The same at 10,000 subjobs, 32 at a time (``python -m benchmarks`` name
    ``fresh_start_10k``)."""
    return measure(n, rounds, tmpdir, width=32)


def main(argv: Sequence[str] | None = None) -> list[Row]:
    parser = common_options(__doc__, rounds=5)
    parser.add_argument("--n", type=int, default=1000, help="subjobs (default: %(default)s)")
    parser.add_argument("--width", type=int, default=8,
                        help="processes at a time (default: %(default)s)")
    parser.add_argument("--no-cli", action="store_true",
                        help="only the engine script and the floors")
    parser.add_argument("--profile", action="store_true",
                        help="add one engine script run under cProfile and print its hot spots")
    parser.add_argument("--top", type=int, default=25,
                        help="functions the profile lists (default: %(default)s)")
    parser.add_argument("--compare", metavar="TREE",
                        help="also run the engine script importing ganga_async from the source "
                             "tree TREE (e.g. git archive of an earlier commit), interleaved")
    args = parser.parse_args(argv)
    rows = measure(args.n, args.rounds, args.tmpdir, args.width, not args.no_cli, args.profile,
                   args.top, args.compare)
    print()
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
