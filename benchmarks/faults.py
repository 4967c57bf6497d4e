"""The fault suite: kill -9 loops and a flaky batch system, each trial checked for what was lost,
ran twice, got stuck or left the repository unsound.

``python -m benchmarks.faults [--trials 30] [--subjobs 1000] [--loop NAME ...] [--json]``

Every trial has a fresh gangadir and one job whose subjob ``i`` appends ``i`` to a ledger file, so
the ledger says which subjobs ran and how often. The loops:

- **engine**: a child process opens an engine and submits the job; it is killed (``SIGKILL``) at a
  random point of the submission. The Local runner and its processes go on, as they would.
- **daemon**: a daemon (``service start --foreground``) is sent the job by a client with a
  submission token; the daemon is killed at a random point. The client starts a new daemon and,
  when it never got its reply, sends the same submission (same token) again, as a retrying client
  does.
- **crash**: as **engine**, but the engine, its Local runner and every process of the job are
  frozen and killed together: a machine crash.
- **flaky**: the job goes to the real Slurm cluster of ``scripts/slurm-up.sh`` through command
  shims on ``PATH``: each ``sbatch``/``squeue``/``sacct``/``scancel``/``scontrol`` call fails with
  a transient error 15% of the time and hangs 15% of the time (before its real work, or after
  it: a lost reply). Skipped with the reason when no cluster answers.

After a kill the harness restarts an engine in its own process (a job never accepted is submitted
anew, as its user would), waits for the job, then counts per trial:

- **lost**: an accepted job missing, a subjob ``completed`` that never ran, or one ``failed``
  without the reason of a crash (a crash's "may have run"/"cannot be known" subjobs are counted
  as **unknown**: reported, at most once, never a silent rerun);
- **twice**: a subjob whose number is twice or more in the ledger (or a second job);
- **stuck**: a job not final within ``--stuck-after`` seconds;
- **integrity**: SQLite's ``integrity_check``/``foreign_key_check`` not clean, or a job whose
  subjobs are not exactly the submitted ones, or whose status disagrees with its subjobs'.

The harness makes itself a child subreaper, so the runners and processes the killed engines and
daemons leave behind are its own descendants: each trial ends by waiting for them and killing any
left. ``tests/test_faults.py`` runs a few small trials of each loop in ``make test``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

from ganga_async import ArgSplitter, Config, Engine, Executable, Job, Local, Slurm, Status, load_config
from ganga_async.service.client import AsyncGangaService
from ganga_async.states import FINAL

LOOPS = ("engine", "daemon", "crash", "flaky")
CRASH_REASONS = ("may have run", "cannot be known", "exit status is unknown")
"""Words of the reasons a subjob fails with when a crash leaves its run unknown."""


@dataclass
class Counts:
    loop: str
    trials: int = 0
    lost: int = 0
    twice: int = 0
    stuck: int = 0
    integrity: int = 0
    unknown: int = 0
    mid_run: int = 0
    """Trials whose kill came after acceptance and before the last subjob ran."""
    retried: int = 0
    """Daemon trials whose submit reply was lost and whose retry (same token) found the job."""
    injected: int = 0
    """Faults the flaky loop's commands made (failures, hangs, lost replies)."""
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    def bad(self) -> int:
        return self.lost + self.twice + self.stuck + self.integrity


@dataclass
class Trial:
    """One trial's scratch: its gangadir, ledger, user configuration and child environment."""

    root: Path
    subjobs: int
    config_text: str = ""

    @property
    def gangadir(self) -> Path:
        return self.root / "gangadir"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger"

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    def config(self) -> Config:
        self.config_file.write_text(self.config_text)
        return load_config(self.config_file, environ={})

    def env(self) -> dict[str, str]:
        self.config_file.write_text(self.config_text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GANGA_ASYNC_")}
        env["GANGA_ASYNC_CONFIG"] = str(self.config_file)
        env["GANGA_ASYNC_GANGADIR"] = str(self.gangadir)
        return env


BASE_CONFIG = ("[Monitoring]\npoll_interval = 0.3\n\n[Repository]\nflush_interval = 0.01\n\n"
               "[Service]\ninterrupt_grace = 0.5\nstop_timeout = 10.0\n")


def job_description(ledger: Path, n: int, backend: str = "Local") -> dict[str, Any]:
    """The job as job-file fields: subjob ``i`` appends ``i`` to ``ledger``."""
    return {"name": "faults", "application": {"type": "Executable", "exe": "/bin/sh"},
            "backend": {"type": backend},
            "splitter": {"type": "ArgSplitter",
                         "args": [["-c", f'echo "$1" >> {ledger}', "sh", str(i)] for i in range(n)]}}


def make_job(ledger: Path, n: int, backend: Local | Slurm | None = None) -> Job:
    return Job(name="faults", application=Executable(exe="/bin/sh"), backend=backend or Local(),
               splitter=ArgSplitter(args=[["-c", f'echo "$1" >> {ledger}', "sh", str(i)]
                                          for i in range(n)]))


SUBMITTER = textwrap.dedent("""
    import sys, anyio
    from pathlib import Path
    from ganga_async import Engine, load_config
    from benchmarks.faults import make_job
    gangadir, ledger, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    async def main():
        async with Engine(gangadir, config=load_config()) as engine:
            print("submitting", flush=True)
            await engine.submit(make_job(ledger, n))
            print("accepted", flush=True)
            await anyio.sleep_forever()
    anyio.run(main)
""")


# -- processes ------------------------------------------------------------------------------

def become_subreaper() -> None:
    """Orphans of our descendants (a killed engine's runner) become our children (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36
    if libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def freeze_and_kill(root: int) -> None:
    """A machine crash for ``root`` and everything under it, and for the orphans we inherited
    (the Local runner detaches itself from the engine, and so becomes our child): stop them all
    (no more forks), then SIGKILL them all at once."""
    stopped: set[int] = set()
    while True:
        roots = [root, *(p for p in _children().get(os.getpid(), []) if p != root)]
        new = [p for r in roots for p in [r, *descendants(r)] if p not in stopped]
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
            stopped.add(pid)
    for pid in stopped:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def reap_leftovers(keep: Sequence[int] = (), grace: float = 30.0) -> int:
    """Wait up to ``grace`` s for the orphans we inherited (runners ending their processes),
    then kill what is left; reap them all. Returns how many had to be killed."""
    mine = os.getpid()
    deadline = time.monotonic() + grace
    killed = 0
    while True:
        orphans = [p for p in _children().get(mine, []) if p not in keep and not _reaped(p)]
        if not orphans:
            return killed
        if time.monotonic() > deadline:
            for pid in orphans:
                for sub in [pid, *descendants(pid)]:
                    _signal(sub, signal.SIGKILL)
                    killed += 1
            deadline = time.monotonic() + 5
        time.sleep(0.1)


def _reaped(pid: int) -> bool:
    """Reap ``pid`` if it has ended (a zombie); whether it is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done != 0


def start_submitter(trial: Trial) -> subprocess.Popen[str]:
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen([sys.executable, "-c", SUBMITTER, str(trial.gangadir), str(trial.ledger),
                             str(trial.subjobs)], stdout=subprocess.PIPE, text=True, cwd=root,
                            env={**trial.env(), "PYTHONPATH": str(root)})


def read_until(proc: subprocess.Popen[str], word: str, seconds: float = 60) -> list[str]:
    """The lines ``proc`` printed until ``word`` (or its end, or ``seconds``)."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    for line in proc.stdout:
        seen.append(line.strip())
        if seen[-1] == word or time.monotonic() > deadline:
            break
    return seen


# -- checking a trial -----------------------------------------------------------------------

def ledger_counts(ledger: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    if ledger.exists():
        for word in ledger.read_text().split():
            counts[int(word)] = counts.get(int(word), 0) + 1
    return counts


def check_repository(path: Path, counts: Counts) -> None:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        verdict = db.execute("PRAGMA integrity_check").fetchall()
        dangling = db.execute("PRAGMA foreign_key_check").fetchall()
    if verdict != [("ok",)] or dangling:
        counts.integrity += 1
        counts.notes.append(f"repository {path}: integrity {verdict[:3]}, foreign keys {dangling[:3]}")


def check_job(job: Job, trial: Trial, counts: Counts, *, crash: bool) -> None:
    """Count what went wrong with ``job`` (final) against the ledger."""
    ran = ledger_counts(trial.ledger)
    indices = sorted(s.id for s in job.subjobs)
    if indices != list(range(trial.subjobs)):
        counts.integrity += 1
        counts.notes.append(f"job {job.fqid} has subjobs {indices[:5]}... not 0..{trial.subjobs - 1}")
    for subjob in job.subjobs:
        times = ran.get(subjob.id, 0)
        if times > 1:
            counts.twice += 1
            counts.notes.append(f"subjob {subjob.fqid} ran {times} times")
        if subjob.status is Status.COMPLETED and times == 0:
            counts.lost += 1
            counts.notes.append(f"subjob {subjob.fqid} is completed but never ran")
        elif subjob.status is not Status.COMPLETED:
            reason = subjob.reason or ""
            if crash and subjob.status is Status.FAILED and any(w in reason for w in CRASH_REASONS):
                counts.unknown += 1
            else:
                counts.lost += 1
                counts.notes.append(f"subjob {subjob.fqid} ended {subjob.status}: {reason}")
    all_done = all(s.status is Status.COMPLETED for s in job.subjobs)
    if (job.status is Status.COMPLETED) != all_done:
        counts.integrity += 1
        counts.notes.append(f"job {job.fqid} is {job.status} but its subjobs say otherwise")


async def finish(engine: Engine, trial: Trial, counts: Counts, *, accepted: bool, crash: bool,
                 stuck_after: float) -> None:
    """In a restarted engine: submit anew a job never accepted, wait for it, check it."""
    jobs = [j for j in await engine.jobs() if j.status is not Status.NEW]
    if len(jobs) > 1:
        counts.twice += 1
        counts.notes.append(f"{len(jobs)} jobs for one submission")
    if not jobs:
        if accepted:
            counts.lost += 1
            counts.notes.append("the accepted job is gone")
        if trial.ledger.exists():
            counts.integrity += 1
            counts.notes.append("subjobs of a job never accepted ran")
            trial.ledger.unlink()
        jobs = [await engine.submit(make_job(trial.ledger, trial.subjobs))]
    for job in jobs:
        try:
            await engine.wait(job, timeout=stuck_after)
        except TimeoutError:
            counts.stuck += 1
            counts.notes.append(f"job {job.fqid} still {job.status} after {stuck_after} s: "
                                + ", ".join(f"{s.fqid} {s.status}" for s in job.subjobs
                                            if s.status not in FINAL)[:300])
            await engine.kill(job)
            continue
        check_job(job, trial, counts, crash=crash)
    check_repository(engine.repository.path, counts)


# -- the loops ------------------------------------------------------------------------------

def engine_trial(trial: Trial, counts: Counts, rng: random.Random, *, crash: bool,
                 max_delay: float, stuck_after: float) -> None:
    trial.config_text = BASE_CONFIG
    proc = start_submitter(trial)
    said = read_until(proc, "submitting")
    time.sleep(rng.uniform(0, max_delay))
    if proc.poll() is None:
        # Whether it said "accepted" before it died is read from its output afterwards.
        if crash:
            freeze_and_kill(proc.pid)
        else:
            proc.kill()
    proc.wait()
    assert proc.stdout is not None
    said += [line.strip() for line in proc.stdout]
    proc.stdout.close()
    accepted = "accepted" in said
    if accepted and len(ledger_counts(trial.ledger)) < trial.subjobs:
        counts.mid_run += 1
    if "submitting" not in said:
        counts.notes.append(f"the submitter failed to start: {said}")
        counts.stuck += 1
        return

    async def resume() -> None:
        async with Engine(trial.gangadir, config=trial.config()) as engine:
            await finish(engine, trial, counts, accepted=accepted, crash=crash,
                         stuck_after=stuck_after)

    anyio.run(resume, backend="asyncio")


def daemon_trial(trial: Trial, counts: Counts, rng: random.Random, *, max_delay: float,
                 stuck_after: float) -> None:
    trial.config_text = BASE_CONFIG
    token = uuid.uuid4().hex
    description = job_description(trial.ledger, trial.subjobs)

    async def main() -> None:
        daemon = await start_daemon(trial)
        reply: dict[str, Any] | None = None
        try:
            client = await connect(trial)
            async with client, anyio.create_task_group() as tg:
                async def killer() -> None:
                    # Half the kills fall in the submit request itself (its reply lost).
                    await anyio.sleep(rng.uniform(0, max_delay) * rng.choice((0.1, 1.0)))
                    daemon.kill()
                tg.start_soon(killer)
                try:
                    reply = await client.submit(description, token=token)
                except Exception:  # the daemon died under the request: a lost reply
                    reply = None
        finally:
            daemon.kill()
            daemon.wait()
        if 0 < len(ledger_counts(trial.ledger)) < trial.subjobs:
            counts.mid_run += 1
        daemon = await start_daemon(trial)
        try:
            async with await connect(trial) as client:
                accepted_before = bool(await client.jobs())
                again = await client.submit(description, token=token)  # the client's retry
                if reply is None and accepted_before:
                    counts.retried += 1
                if reply is not None and again["id"] != reply["id"]:
                    counts.twice += 1
                    counts.notes.append(f"the retried submission made job {again['id']} beside "
                                        f"{reply['id']}")
                try:
                    await client.wait(again["id"], timeout=stuck_after)
                except TimeoutError:
                    pass
                await client.shutdown()
        finally:
            if daemon.poll() is None:
                daemon.kill()
            daemon.wait()
        async with Engine(trial.gangadir, config=trial.config()) as engine:
            await finish(engine, trial, counts, accepted=True, crash=False, stuck_after=stuck_after)

    anyio.run(main, backend="asyncio")


async def start_daemon(trial: Trial) -> subprocess.Popen[bytes]:
    # Popen, not anyio.open_process: the harness kills it by pid at a random moment.
    argv = [sys.executable, "-m", "ganga_async.cli", "--gangadir", str(trial.gangadir),
            "service", "start", "--foreground"]
    proc = subprocess.Popen(argv, env=trial.env(),  # noqa: ASYNC220
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with anyio.fail_after(60):
        while True:
            client = await AsyncGangaService.running(trial.gangadir)
            if client is not None:
                await client.aclose()
                return proc
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with {proc.returncode}")
            await anyio.sleep(0.05)


async def connect(trial: Trial) -> AsyncGangaService:
    client = await AsyncGangaService.running(trial.gangadir)
    if client is None:
        raise RuntimeError("the daemon went away")
    return client


SHIM = """#!/bin/bash
r=$((RANDOM % 100))
if [ $r -lt 15 ]; then
  echo fail >> {log}
  echo "slurm_load_jobs error: Unable to contact slurm controller (connect failure)" >&2
  exit 1
elif [ $r -lt 30 ]; then
  if [ $((RANDOM % 2)) = 0 ]; then echo hang >> {log}; exec sleep 600; fi
  {real} "$@"
  echo lost-reply >> {log}
  exec sleep 600
fi
exec {real} "$@"
"""
"""A batch command that fails 15% of the time and hangs 15% (half of those after doing its
work: a lost reply), logging each fault it makes to ``{log}``."""


def make_shims(root: Path) -> Path:
    shims = root / "shims"
    shims.mkdir()
    for name in ("sbatch", "squeue", "sacct", "scancel", "scontrol"):
        real = shutil.which(name)
        if real is None:
            continue
        path = shims / name
        path.write_text(SHIM.replace("{real}", real).replace("{log}", str(root / "faults.log")))
        path.chmod(0o755)
    return shims


def flaky_trial(trial: Trial, counts: Counts, rng: random.Random, *, max_delay: float,
                stuck_after: float) -> None:
    trial.config_text = BASE_CONFIG + (
        "\n[Slurm]\ncommand_timeout = 1.0\npoll_min = 0.3\npoll_max = 1.0\nheartbeat = 2.0\n"
        "submit_retry = 600.0\n")
    shims = make_shims(trial.root)
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{shims}:{path}"

    async def main() -> None:
        async with Engine(trial.gangadir, config=trial.config()) as engine:
            await engine.submit(make_job(trial.ledger, trial.subjobs, Slurm(time="10")))
            await finish(engine, trial, counts, accepted=True, crash=False, stuck_after=stuck_after)

    try:
        anyio.run(main, backend="asyncio")
    finally:
        os.environ["PATH"] = path
        faults = trial.root / "faults.log"
        counts.injected += len(faults.read_text().split()) if faults.exists() else 0


def cluster_problem() -> str | None:
    from .slurm_submit import find_cluster
    return find_cluster()


def run_loop(loop: str, trials: int, subjobs: int, *, seed: int, max_delay: float,
             stuck_after: float, tmpdir: str | None,
             progress: Callable[[str], None] = print) -> Counts:
    counts = Counts(loop)
    if loop == "flaky" and (problem := cluster_problem()) is not None:
        counts.skipped = problem
        return counts
    rng = random.Random(seed)
    for number in range(trials):
        root = Path(tempfile.mkdtemp(prefix=f"ganga-faults-{loop}-", dir=tmpdir))
        trial = Trial(root, subjobs)
        before = counts.bad()
        try:
            if loop in ("engine", "crash"):
                engine_trial(trial, counts, rng, crash=loop == "crash", max_delay=max_delay,
                             stuck_after=stuck_after)
            elif loop == "daemon":
                daemon_trial(trial, counts, rng, max_delay=max_delay, stuck_after=stuck_after)
            else:
                flaky_trial(trial, counts, rng, max_delay=max_delay, stuck_after=stuck_after)
        except Exception as exc:  # a harness or engine error is a failed trial, reported
            counts.stuck += 1
            counts.notes.append(f"trial {number}: {type(exc).__name__}: {exc}")
        leftover = reap_leftovers()
        if leftover:
            counts.notes.append(f"trial {number}: killed {leftover} leftover processes")
        counts.trials += 1
        if counts.bad() == before:
            shutil.rmtree(root, ignore_errors=True)
        else:
            counts.notes.append(f"trial {number} kept in {root}")
        progress(f"{loop} trial {number + 1}/{trials}: lost {counts.lost}, twice {counts.twice}, "
                 f"stuck {counts.stuck}, integrity {counts.integrity}, unknown {counts.unknown}, "
                 f"killed mid-run {counts.mid_run}, retried {counts.retried}, "
                 f"faults injected {counts.injected}")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30, help="trials of each loop (default 30)")
    parser.add_argument("--subjobs", type=int, default=1000, help="subjobs of each job (default 1000)")
    parser.add_argument("--flaky-subjobs", type=int, default=None,
                        help="subjobs of the flaky loop's job (default: --subjobs, at most 100)")
    parser.add_argument("--loop", action="append", choices=LOOPS, default=None,
                        help="run only this loop (repeatable)")
    parser.add_argument("--max-delay", type=float, default=2.0,
                        help="kill at a random point this many seconds into the submission")
    parser.add_argument("--stuck-after", type=float, default=300.0,
                        help="a job not final this many seconds after the restart is stuck")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON line")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    become_subreaper()
    results = []
    for loop in args.loop or LOOPS:
        n = args.subjobs if loop != "flaky" else (args.flaky_subjobs or min(args.subjobs, 100))
        results.append(run_loop(loop, args.trials, n, seed=seed, max_delay=args.max_delay,
                                stuck_after=args.stuck_after, tmpdir=args.tmpdir,
                                progress=lambda s: print(s, file=sys.stderr, flush=True)))
    print(f"fault suite (seed {seed}, {args.trials} trials each, {args.subjobs} subjobs):")
    print(f"{'loop':8} {'trials':>6} {'lost':>5} {'twice':>5} {'stuck':>5} {'integrity':>9} "
          f"{'unknown':>7} {'mid-run':>7} {'retried':>7} {'injected':>8}")
    for c in results:
        if c.skipped:
            print(f"{c.loop:8} skipped: {c.skipped}")
            continue
        print(f"{c.loop:8} {c.trials:>6} {c.lost:>5} {c.twice:>5} {c.stuck:>5} {c.integrity:>9} "
              f"{c.unknown:>7} {c.mid_run:>7} {c.retried:>7} {c.injected:>8}")
        for note in c.notes[:20]:
            print(f"  {note}")
    if args.json:
        print(json.dumps([asdict(c) for c in results]))
    return 1 if any(c.bad() for c in results) else 0


if __name__ == "__main__":
    sys.exit(main())
