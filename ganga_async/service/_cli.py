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
from pathlib import Path
from typing import Any

import anyio

from .. import cli
from .._exceptions import ServiceRunningError, WaitTimeoutError
from .._jobfile import load_job_file
from ..config import Config, load_config
from ..states import FINAL, Status
from ._control import connect, spawn_daemon
from ._paths import ServicePaths
from .client import AsyncGangaService, _job_dict, _process_exit

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
        await service.shutdown(wait=False)
    await _process_exit(pid)
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
    started = time.monotonic()
    info = await service.submit(_job_dict(job))
    return await _follow_up(service, args, info, started)


async def _resubmit(service: AsyncGangaService, args: argparse.Namespace, config: Config) -> int:
    started = time.monotonic()
    info = await service.resubmit(args.id)
    return await _follow_up(service, args, info, started)


async def _follow_up(service: AsyncGangaService, args: argparse.Namespace, info: dict[str, Any],
                     started: float) -> int:
    if args.wait:
        final = await service.wait(info["id"])
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
    return cli.print_report(await service.wait(args.id), args)


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


_COMMANDS = {
    "submit": _submit, "resubmit": _resubmit, "wait": _wait, "jobs": _jobs, "show": _show,
    "kill": _kill, "remove": _remove, "peek": _peek,
}
