"""Optional: figure 1 against peer frameworks, Dask ``distributed`` and Parsl.

The same work as :mod:`benchmarks.local_echo` (``n`` runs of ``/bin/echo i``, ``width`` at a
time, each process's stdout and stderr in files in its own directory), run by:

- **engine**: ganga-async, exactly as in ``local_echo`` (runner start included);
- **bare threads**: the ``local_echo`` baseline, to tie these numbers to that figure;
- **dask**: ``LocalCluster(n_workers=1, threads_per_worker=width, processes=False)`` (Dask's
  lightest local setup) and ``client.map`` of a function running ``Popen(...).wait()``;
- **parsl**: a ``ThreadPoolExecutor(max_threads=width)`` and a ``@bash_app`` per process with
  ``stdout=`` and ``stderr=`` files, Parsl's own way of running a command.

Each peer's window runs from starting its cluster or loading its configuration until every
result is in, as the engine's includes starting its runner; importing the framework is
outside it, as importing ganga_async is. The figure is engine / peer (target: below 1, faster
than every one of them).

The peers are never dependencies of ganga-async. They run in a separate interpreter,
``--peer-python`` (default ``$GANGA_BENCH_PEER_PYTHON`` or
``/tmp/ganga-bench-peers/bin/python``), that the benchmark only uses if it exists::

    python3 -m venv /tmp/ganga-bench-peers
    /tmp/ganga-bench-peers/bin/pip install "dask[distributed]" parsl

A peer that is missing or fails a first small run is skipped with a message saying why.

Run it with ``python -m benchmarks.peers [--n 1000] [--width 8] [--rounds 3]``.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ._harness import Row, clean_env, common_options, fmt_s, interleave, print_table, scratch, verdict
from .local_echo import check_outputs, run_bare_threads, run_engine

DEFAULT_PEER_PYTHON = "/tmp/ganga-bench-peers/bin/python"

_COMMON = """\
import json, os, subprocess, sys, time
root, n, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
dirs = [os.path.join(root, str(i)) for i in range(n)]
"""

PEER_CODE = {
    "dask": _COMMON + """\
from dask.distributed import Client, LocalCluster

def echo(d, i):
    os.mkdir(d)
    with open(os.path.join(d, "stdout"), "wb") as out, \\
            open(os.path.join(d, "stderr"), "wb") as err:
        return subprocess.Popen(["/bin/echo", str(i)], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err).wait()

start = time.perf_counter()
with LocalCluster(n_workers=1, threads_per_worker=width, processes=False,
                  dashboard_address=None) as cluster, Client(cluster) as client:
    codes = client.gather(client.map(echo, dirs, range(n), pure=False))
elapsed = time.perf_counter() - start
assert codes == [0] * n, codes
print(json.dumps({"seconds": elapsed}))
""",
    "parsl": _COMMON + """\
import logging
import parsl
from parsl.app.app import bash_app
from parsl.config import Config
from parsl.executors.threads import ThreadPoolExecutor

logging.disable(logging.CRITICAL)

@bash_app
def echo(i, stdout=None, stderr=None):
    return f"/bin/echo {i}"

start = time.perf_counter()
dfk = parsl.load(Config(executors=[ThreadPoolExecutor(max_threads=width)],
                        run_dir=os.path.join(root, "runinfo"), initialize_logging=False))
futures = []
for i, d in enumerate(dirs):
    os.mkdir(d)
    futures.append(echo(i, stdout=os.path.join(d, "stdout"), stderr=os.path.join(d, "stderr")))
codes = [f.result() for f in futures]
elapsed = time.perf_counter() - start
dfk.cleanup()
assert codes == [0] * n, codes
print(json.dumps({"seconds": elapsed}))
""",
}


def run_peer(python: str, name: str, root: Path, n: int, width: int, env: dict[str, str]) -> float:
    """One run of peer ``name`` in the peer interpreter; its own timed window, in seconds."""
    base = root / f"{name}-{time.monotonic_ns()}"
    base.mkdir()
    done = subprocess.run([python, "-c", PEER_CODE[name], str(base), str(n), str(width)],
                          env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{name} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    seconds = float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
    check_outputs([base / str(i) for i in range(n)], empty_stderr=name != "parsl")
    return seconds


def measure(n: int = 1000, width: int = 8, rounds: int = 3, tmpdir: str | None = None,
            python: str | None = None) -> list[Row]:
    """Probe the peers, run the interleaved rounds, print the details, return the rows."""
    python = python or os.environ.get("GANGA_BENCH_PEER_PYTHON") or DEFAULT_PEER_PYTHON
    print(f"peers: {n} x /bin/echo, {width} at a time, {rounds} interleaved rounds; "
          f"peers run by {python}")
    with scratch(tmpdir, "peers") as root:
        env = clean_env(root)
        variants: dict[str, Callable[[], float]] = {
            "engine": lambda: run_engine(root, n, width).wall,
            "bare threads": lambda: run_bare_threads(root, n, width).wall,
        }
        if not os.access(python, os.X_OK):
            print(f"  skipped: no peer interpreter at {python} (see the module docstring to "
                  "create one, or pass --peer-python)")
            return []
        for name in PEER_CODE:
            try:
                run_peer(python, name, root, min(n, 16), width, env)
            except (RuntimeError, subprocess.SubprocessError, ValueError, OSError) as exc:
                print(f"  {name}: skipped, a first small run failed: {exc}")
                continue
            variants[name] = functools.partial(run_peer, python, name, root, n, width, env)
        samples = interleave(rounds, variants)
    for s in samples.values():
        print(f"  {s.name:<13} {s.summary()}")
    engine = samples["engine"]
    rows = [Row("1 peers", "engine", fmt_s(engine.best),
                f"{engine.best / samples['bare threads'].best:.2f}x bare threads")]
    for name in PEER_CODE:
        if name in samples:
            peer = samples[name]
            ratio = engine.best / peer.best
            rows.append(Row("1 peers", name, fmt_s(peer.best), f"engine {ratio:.2f}x {name}",
                            "engine < 1x", verdict(ratio, 1, inclusive=False)))
    return rows


def main(argv: Sequence[str] | None = None) -> list[Row]:
    parser = common_options(__doc__)
    parser.add_argument("--n", type=int, default=1000, help="processes (default: %(default)s)")
    parser.add_argument("--width", type=int, default=8,
                        help="processes at a time (default: %(default)s)")
    parser.add_argument("--peer-python", default=None,
                        help=f"the interpreter with the peers installed (default: "
                             f"$GANGA_BENCH_PEER_PYTHON or {DEFAULT_PEER_PYTHON})")
    args = parser.parse_args(argv)
    rows = measure(args.n, args.width, args.rounds, args.tmpdir, args.peer_python)
    print()
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
