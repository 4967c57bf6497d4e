"""The command line's side of the service: ``ganga-async service start|stop|status``, and the
commands answered by a running daemon instead of an engine of their own.

``service start`` exits 0 once the daemon serves, 1 if one already runs; ``service status``
exits 0 when one runs and 3 when none does; ``service stop`` exits 0 once the daemon has ended
(or when none ran). Errors exit 2, as everywhere in the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from .. import cli
from .._exceptions import ServiceRunningError, WaitTimeoutError
from .._jobfile import load_job_file
from ..config import Config, load_config
from ..events import JobEvent
from ..prepared.sharedir import SharedArea
from ..prepared.shareref import ShareDirInfo
from ..states import FINAL, Status
from ._control import connect, spawn_daemon
from ._paths import ServicePaths
from .client import AsyncGangaService, Subscription

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["service_command", "served"]


def service_command(args: argparse.Namespace) -> int:
    """``ganga-async service ACTION``."""
    config = load_config()
    gangadir = (args.gangadir or config.gangadir).expanduser().absolute()
    if args.action == "start":
        if args.foreground:
            # Imported here: the commands that only look for a running daemon need no server.
            from .server import run_daemon

            # Started by `service start` (with a ready pipe), stderr is a file: log to the log only.
            return run_daemon(gangadir, config, foreground=args.ready_fd is None,
                              ready_fd=args.ready_fd, verbose=args.verbose)
        try:
            pid = spawn_daemon(gangadir, timeout=config["Service"]["start_timeout"],
                               verbose=args.verbose)
        except ServiceRunningError as exc:
            _say(args, {"running": True, "pid": exc.pid, "started": False}, f"{exc}")
            return 1
        _say(args, {"running": True, "pid": pid, "started": True},
             f"ganga-async service started for {gangadir} (pid {pid}); log: "
             f"{ServicePaths(gangadir).log}")
        return 0
    if args.action == "stop":
        return anyio.run(_stop, gangadir, args, backend="asyncio")
    return anyio.run(_status, gangadir, args, backend="asyncio")


def _say(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data) if args.json else text)


async def _stop(gangadir: Path, args: argparse.Namespace) -> int:
    pid = ServicePaths(gangadir).running_pid()
    if pid is None:
        _say(args, {"running": False, "stopped": False}, f"no ganga-async service runs for {gangadir}")
        return 0
    async with AsyncGangaService(gangadir, autostart=False) as service:
        await service.shutdown()
    _say(args, {"running": False, "stopped": True, "pid": pid},
         f"ganga-async service for {gangadir} stopped (pid {pid})")
    return 0


async def _status(gangadir: Path, args: argparse.Namespace) -> int:
    paths = ServicePaths(gangadir)
    pid = paths.running_pid()
    if pid is None:
        stale = [str(p) for p in (paths.pidfile, paths.socket) if p.exists()]
        note = f" (stale files, cleaned at the next start: {', '.join(stale)})" if stale else ""
        _say(args, {"running": False, "stale": stale}, f"no ganga-async service runs for {gangadir}{note}")
        return 3
    async with AsyncGangaService(gangadir, autostart=False) as service:
        info = await service.ping()
    info["running"] = True
    _say(args, info, f"ganga-async service {info['version']} runs for {gangadir}: pid {info['pid']}, "
         f"up {info['uptime']:.0f} s, {info['connections']} connection(s), "
         f"{info['in_progress']} operation(s) in progress; log: {paths.log}")
    return 0


async def served(args: argparse.Namespace, config: Config) -> int | None:
    """Run the command through the gangadir's daemon; None when no daemon runs."""
    gangadir = (args.gangadir or config.gangadir).expanduser().absolute()
    stream = await connect(gangadir)
    if stream is None:
        return None
    async with await AsyncGangaService(gangadir, autostart=False)._attach(stream) as service:
        code: int = await _COMMANDS[args.command](service, args, config)
        return code


async def _submit(service: AsyncGangaService, args: argparse.Namespace, config: Config) -> int:
    job = load_job_file(args.file)
    progress = cli.progress_bar(args) if args.wait else None
    async with _transitions(service, progress) as events:
        started = time.monotonic()
        info = await service.submit(job)
        return await _follow_up(service, args, info, events, {}, progress, started)


async def _resubmit(service: AsyncGangaService, args: argparse.Namespace, config: Config) -> int:
    progress = cli.progress_bar(args) if args.wait else None
    async with _transitions(service, progress, args.id) as events:
        before = (await service.job(args.id)).get("subjob_counts", {}) if events else {}
        started = time.monotonic()
        info = await service.resubmit(args.id)
        return await _follow_up(service, args, info, events, before, progress, started)


async def _follow_up(service: AsyncGangaService, args: argparse.Namespace, info: dict[str, Any],
                     events: AsyncIterator[JobEvent] | None, before: dict[str, int],
                     progress: Progress | None, started: float) -> int:
    """After a (re)submission: with ``--wait`` follow the job (its bar fed by ``events``,
    subscribed to when its subjobs were as counted in ``before``) and summarise it; otherwise
    say that the daemon monitors it."""
    if args.wait:
        bar = cli.JobProgress(str(info["id"]), info.get("subjobs", 0), before)
        final = await bar.follow(progress, events, lambda: service.wait(info["id"]))
        final["elapsed"] = round(time.monotonic() - started, 3)
        return cli.print_report(final, args)
    if args.json:
        print(json.dumps({"id": info["id"], "status": info["status"],
                          "subjobs": info.get("subjobs", 0)}))
    else:
        print(info["id"])
        print(f"the service monitors job {info['id']}; follow it with: ganga-async wait {info['id']}",
              file=sys.stderr)
    return 0


async def _wait(service: AsyncGangaService, args: argparse.Namespace, config: Config) -> int:
    progress = cli.progress_bar(args)
    async with _transitions(service, progress, args.id) as events:
        job = await service.job(args.id)
        bar = cli.JobProgress(job["fqid"], job.get("subjobs", 0), job.get("subjob_counts", {}))
        return cli.print_report(await bar.follow(progress, events, lambda: service.wait(args.id)),
                                args)


@asynccontextmanager
async def _transitions(service: AsyncGangaService, progress: Progress | None,
                       job_id: str | None = None) -> AsyncIterator[AsyncIterator[JobEvent] | None]:
    """The daemon's status transitions from now on (those of job ``job_id`` and its subjobs,
    when it names one), as :class:`JobEvent`; None without a progress bar, the only thing
    they are for."""
    if progress is None:
        yield None
        return
    master = (job_id or "").partition(".")[0]
    async with service.events(int(master) if master.isdigit() else None,
                              types=["status"]) as subscription:
        yield _job_events(subscription)


async def _job_events(subscription: Subscription) -> AsyncIterator[JobEvent]:
    async for event in subscription:
        yield JobEvent(event["fqid"], event["job_id"], event["index"], Status(event["old"]),
                       Status(event["new"]), event["time"], event["reason"])


async def _demo(service: AsyncGangaService, args: argparse.Namespace, config: Config) -> int:
    job = cli.demo_job(args.subjobs)
    progress = cli.progress_bar(args)
    async with _transitions(service, progress) as events:
        started = time.monotonic()
        info = await service.submit(job)
        if not args.json:
            print(cli.demo_banner(str(info["id"]), args.subjobs))
        bar = cli.JobProgress(str(info["id"]), info.get("subjobs", 0), {})
        final = await bar.follow(progress, events, lambda: service.wait(info["id"]))
    final["elapsed"] = round(time.monotonic() - started, 3)
    first = f"{info['id']}.0"
    try:
        sample: str | None = (await service.peek(first)).strip()
    except FileNotFoundError:
        sample = None
    return cli.print_demo(final, first, sample, args)


async def _jobs(service: AsyncGangaService, args: argparse.Namespace, config: Config) -> int:
    return cli.print_jobs(await service.jobs(status=args.status), args, service.gangadir)


async def _show(service: AsyncGangaService, args: argparse.Namespace, config: Config) -> int:
    return cli.print_show(await service.job(args.id), args)


async def _kill(service: AsyncGangaService, args: argparse.Namespace, config: Config) -> int:
    killed = await service.kill(args.id)
    status = killed["status"]
    if Status(status) not in FINAL:
        try:
            status = (await service.wait(args.id, timeout=cli.kill_patience(config)))["status"]
        except WaitTimeoutError:
            status = (await service.job(args.id))["status"]
    return cli.print_killed(str(killed["id"]), status, args)


async def _remove(service: AsyncGangaService, args: argparse.Namespace, config: Config) -> int:
    return cli.print_removed(await service.remove(args.id), args)


async def _peek(service: AsyncGangaService, args: argparse.Namespace, config: Config) -> int:
    return cli.print_peek(str(args.id), await service.peek(args.id, args.file), args)


async def _shareref(service: AsyncGangaService, args: argparse.Namespace, config: Config) -> int:
    if args.action == "ls":
        return cli.print_sharedir_tree(await service.call("shareref_ls", name=args.name), args)
    if args.action == "lookup":
        return cli.print_sharedir_owners(await service.call(
            "shareref_lookup", name=args.name, unprepare=args.unprepare), args)
    if args.action == "rebuild":
        await service.shareref_rebuild(unprepare=args.unprepare, rmdir=args.rmdir)
    rows = [ShareDirInfo(**row) for row in await service.shareref()]
    # The daemon runs for this user: its engine's shared area is this one.
    return cli.print_sharedirs(rows, SharedArea.for_user(service.gangadir, config.user).root, args)


async def _box(service: AsyncGangaService, args: argparse.Namespace, config: Config) -> int:
    return cli.print_box(await service.box(), service.gangadir, args)


_COMMANDS = {
    "submit": _submit, "resubmit": _resubmit, "wait": _wait, "jobs": _jobs, "show": _show,
    "kill": _kill, "remove": _remove, "peek": _peek, "shareref": _shareref, "box": _box,
    "demo": _demo,
}
"""The commands a running daemon answers (``cli._SERVED``), and how."""
