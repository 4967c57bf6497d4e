"""The commands about jobs: ``submit``, ``show``, ``wait``, ``kill``, ``resubmit``, ``remove``,
``peek`` and ``demo``, each written once against a :class:`~.session.Session` (``jobs`` is in
:mod:`.listing`). ``kill``, ``resubmit`` and ``remove`` take many ids and ranges
(:mod:`.ids`): ``kill 3 4 7-9 12.3-5``.

Each is ``async def command(session, args, config) -> exit code``: it asks the session (the
daemon's client, or the command's own engine) and hands the results to
:mod:`~ganga_async.commands.render`. A command that follows a job subscribes to the session's
status events before it acts, so that its progress bar misses nothing. Without a daemon,
``submit`` and ``resubmit`` return once the backend took the job (or refused it: exit code 1,
with the backend's message), whether the command's engine or a daemon submitted it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import GangaAsyncError, JobSpecError, JobStateError, WaitTimeoutError
from .._jobfile import job_from_dict, read_toml
from .._taskfile import is_task_file
from ..applications.executable import Executable
from ..backends.local import Local
from ..config import Config
from ..model.job import Job
from ..splitters.arg import ArgSplitter
from ..states import FINAL, Status
from . import render
from .ids import expand_ids, parse_statuses
from .progress import JobProgress, progress_bar
from .session import Session
from .tasks import add as add_task
from .tasks import file_dir

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["demo", "demo_job", "kill", "kill_patience", "peek", "release", "remove", "resubmit",
           "show", "submit", "wait"]

Events = AsyncIterator[dict[str, Any]]


async def submit(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``submit FILE.toml [--wait] [--token TOKEN]``; a task file (``[task]``) is added and
    run as ``tasks add FILE`` does."""
    data = read_toml(args.file)
    if is_task_file(data):
        if args.wait:
            raise JobSpecError("--wait", f"{args.file} is a task file: --wait follows one job; "
                               "leave it out and follow the task with ganga-async tasks show ID")
        return await add_task(session, args, data)
    job = job_from_dict(data, str(args.file), basedir=file_dir(args.file))
    token = getattr(args, "token", None)
    return await _submitted(session, args, lambda: session.submit(job, token=token), None)


async def resubmit(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``resubmit ID... [--status S[,S...]] [--wait]``: each job in turn; the worst exit code."""
    statuses = parse_statuses(args.status) if args.status else ["failed"]

    async def one(job_id: str) -> int:
        try:
            return await _submitted(session, args, lambda: session.resubmit(job_id, statuses),
                                    job_id)
        except JobStateError as exc:
            raise JobStateError(f"{exc}{await _resubmit_hint(session, job_id, statuses)}") from None

    return await _each(args, expand_ids(args.ids), one)


async def _resubmit_hint(session: Session, job_id: str, statuses: list[str]) -> str:
    """What the subjobs of a job with nothing to resubmit are, and how to take the ended ones."""
    counts: dict[str, int] = (await session.job(job_id)).get("subjob_counts", {})
    if not counts:
        return ""
    listed = ", ".join(f"{n} {s}" for s, n in counts.items())
    ended = [s for s in counts if s in ("killed", "unknown", "failed") and s not in statuses]
    hint = f"; e.g. ganga-async resubmit {job_id} --status {','.join(ended)}" if ended else ""
    return f" (its subjobs: {listed}{hint})"


async def _each(args: argparse.Namespace, ids: list[str],
                one: Callable[[str], Awaitable[int]]) -> int:
    """Run ``one`` for each id in turn; an error is one line and the others still run. The exit
    code is the worst: 2 if any failed with an error, else the highest of theirs."""
    if len(ids) == 1:
        return await one(ids[0])
    worst = 0
    for job_id in ids:
        try:
            worst = max(worst, await one(job_id))
        except GangaAsyncError as exc:
            render.print_error(str(exc), as_json=args.log_json)
            worst = 2
    return worst


async def _submitted(session: Session, args: argparse.Namespace,
                     submission: Callable[[], Awaitable[dict[str, Any]]], job_id: str | None) -> int:
    """Run ``submission`` (of job ``job_id``, None for a new one), then with ``--wait`` follow
    the job and summarise it; otherwise report the handover."""
    progress = progress_bar(args) if args.wait else None
    handover = not args.wait
    async with _transitions(session, progress, job_id, handover) as events:
        before: dict[str, int] = {}
        if progress is not None and job_id is not None:
            before = (await session.job(job_id)).get("subjob_counts", {})
        started = time.monotonic()
        info = await submission()
        if args.wait:
            bar = JobProgress(str(info["id"]), info.get("subjobs", 0), before)
            final = await bar.follow(progress, events, lambda: session.wait(info["id"]),
                                     lambda: session.job(info["id"]))
            final["elapsed"] = round(time.monotonic() - started, 3)
            return render.print_report(final, args)
        if handover and events is not None:
            info = await _handed_over(session, info, events)
    return render.print_handed_over(info, args, by_daemon=session.daemon_pid is not None)


async def _handed_over(session: Session, info: dict[str, Any], events: Events) -> dict[str, Any]:
    """The job of ``info`` once the backend took it (it left ``submitting``): ``{"id",
    "status", "subjobs"}``. A Local job then runs on, queue included, after the engine closes."""
    fqid = str(info["id"])
    if info["status"] == str(Status.SUBMITTING):
        async for event in events:
            if event["fqid"] == fqid and event["new"] != str(Status.SUBMITTING):
                break
    now = await session.job(fqid)
    return {"id": info["id"], "status": now["status"], "subjobs": now.get("subjobs", 0),
            "reason": now.get("reason"), "reached_backend": now.get("reached_backend", False)}


@asynccontextmanager
async def _transitions(session: Session, progress: Progress | None, job_id: str | None = None,
                       handover: bool = False) -> AsyncIterator[Events | None]:
    """The session's status transitions from now on (those of job ``job_id``'s master, when it
    names one), for a ``progress`` bar, or only those of masters and unsplit jobs (and of
    ``job_id`` if it is a subjob) to see a ``handover``; None when neither is wanted."""
    if progress is None and not handover:
        yield None
        return
    master = (job_id or "").partition(".")[0]
    subjobs = progress is not None or "." in (job_id or "")
    async with session.events(int(master) if master.isdigit() else None, subjobs=subjobs,
                              types=["status"]) as events:
        yield events


async def wait(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``wait ID``."""
    progress = progress_bar(args)
    async with _transitions(session, progress, args.id) as events:
        job = await session.job(args.id)
        bar = JobProgress(job["fqid"], job.get("subjobs", 0), job.get("subjob_counts", {}))
        final = await bar.follow(progress, events, lambda: session.wait(args.id),
                                 lambda: session.job(args.id))
        return render.print_report(final, args)


async def show(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``show ID``."""
    return render.print_show(await session.job(args.id), args)


async def kill(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``kill ID...``: every kill at once, then a few seconds for the backend to confirm them;
    an id that cannot be killed is an error line and the others are killed all the same."""
    ids = expand_ids(args.ids)
    outcomes: dict[str, tuple[str, str] | GangaAsyncError] = {}

    async def one(job_id: str) -> None:
        try:
            killed = await session.kill(job_id)
            status = killed["status"]
            if Status(status) not in FINAL:
                try:
                    status = (await session.wait(job_id, timeout=kill_patience(config)))["status"]
                except WaitTimeoutError:
                    status = (await session.job(job_id))["status"]
            outcomes[job_id] = (str(killed["id"]), status)
        except GangaAsyncError as exc:
            outcomes[job_id] = exc

    async with anyio.create_task_group() as tg:
        for job_id in ids:
            tg.start_soon(one, job_id)
    only = outcomes[ids[0]]
    if len(ids) == 1 and isinstance(only, GangaAsyncError):
        raise only
    return render.print_killed([outcomes[i] for i in ids], args)


async def release(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``release ID...``: let jobs (or subjobs) their batch system holds go on, each in turn."""
    return await _each(args, expand_ids(args.ids), lambda job_id: _released(session, job_id, args))


async def _released(session: Session, job_id: str, args: argparse.Namespace) -> int:
    released = await session.release(job_id)
    if args.json:
        render.print_json(released)
    else:
        print(f"release of job {released['id']} requested; it is {released['status']}")
    return 0


def kill_patience(config: Config) -> float:
    """Seconds ``kill`` waits for the killed job to be seen final: the grace a Local job has to
    end, and a poll of its backend."""
    return float(config["Local"]["kill_grace"] + config["Monitoring"]["poll_interval"] + 1)


async def remove(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``remove ID...``: each job in turn."""
    return await _each(args, expand_ids(args.ids),
                       lambda job_id: _removed(session, job_id, args))


async def _removed(session: Session, job_id: str, args: argparse.Namespace) -> int:
    return render.print_removed(await session.remove(job_id), args)


async def peek(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``peek ID [FILE]``."""
    return render.print_peek(await session.call("peek", id=args.id, file=args.file), args)


async def demo(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``demo [--subjobs N]``: :func:`demo_job` with a progress bar and a report."""
    progress = progress_bar(args)
    async with _transitions(session, progress) as events:
        started = time.monotonic()
        info = await session.submit(demo_job(args.subjobs))
        if not args.json:
            print(render.demo_banner(str(info["id"]), args.subjobs))
        bar = JobProgress(str(info["id"]), info.get("subjobs", 0), {})
        final = await bar.follow(progress, events, lambda: session.wait(info["id"]),
                                 lambda: session.job(info["id"]))
    elapsed = round(time.monotonic() - started, 3)
    first = f"{info['id']}.0"
    try:
        sample: str | None = (await session.peek(first)).strip()
    except FileNotFoundError:
        sample = None
    report = {"id": final["id"], "status": final["status"], "elapsed": elapsed, **final}
    return render.print_demo(report, first, sample, args)


def demo_job(count: int) -> Job:
    """The main job: ``count`` subjobs of ``/bin/echo`` on Local, 8 at a time."""
    return Job(
        name="demo",
        comment=f"ganga-async demo: {count} subjobs of /bin/echo",
        application=Executable(exe="/bin/echo", args=[]),
        backend=Local(max_concurrent=8),
        splitter=ArgSplitter(args=[[f"hello from subjob {i}"] for i in range(count)]),
    )
