"""``ganga-async service start|stop|status``: the daemon of the gangadir.

``service start`` exits 0 once the daemon serves, 1 if one already runs; ``service status``
exits 0 when one runs and 3 when none does; ``service stop`` exits 0 once the daemon has ended
(or when none ran). Errors exit 2, as everywhere in the command line. ``start --foreground``
runs the daemon in this process (:func:`~ganga_async.service.server.run_daemon`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio

from .._exceptions import ServiceRunningError
from ..config import Config
from ..service import AsyncGangaService
from ..service._control import spawn_daemon
from ..service._paths import ServicePaths
from .render import say

__all__ = ["service_command"]


def service_command(args: argparse.Namespace, config: Config) -> int:
    """``ganga-async service ACTION``; the exit code."""
    gangadir = (args.gangadir or config.gangadir).expanduser().absolute()
    if args.action == "start":
        if args.foreground:
            # Imported here: the commands that only look for a running daemon need no server.
            from ..service.server import run_daemon

            # Started by `service start` (with a ready pipe), stderr is a file: log to the log only.
            return run_daemon(gangadir, config, foreground=args.ready_fd is None,
                              ready_fd=args.ready_fd, verbose=args.verbose)
        try:
            pid = spawn_daemon(gangadir, timeout=config["Service"]["start_timeout"],
                               verbose=args.verbose)
        except ServiceRunningError as exc:
            say(args, {"running": True, "pid": exc.pid, "started": False}, f"{exc}")
            return 1
        say(args, {"running": True, "pid": pid, "started": True},
            f"ganga-async service started for {gangadir} (pid {pid}); log: "
            f"{ServicePaths(gangadir).log}")
        return 0
    if args.action == "stop":
        return anyio.run(_stop, gangadir, args, backend="asyncio")
    return anyio.run(_status, gangadir, args, backend="asyncio")


async def _stop(gangadir: Path, args: argparse.Namespace) -> int:
    pid = ServicePaths(gangadir).running_pid()
    if pid is None:
        say(args, {"running": False, "stopped": False}, f"no ganga-async service runs for {gangadir}")
        return 0
    async with AsyncGangaService(gangadir, autostart=False) as service:
        await service.shutdown()
    say(args, {"running": False, "stopped": True, "pid": pid},
        f"ganga-async service for {gangadir} stopped (pid {pid})")
    return 0


async def _status(gangadir: Path, args: argparse.Namespace) -> int:
    paths = ServicePaths(gangadir)
    pid = paths.running_pid()
    if pid is None:
        stale = [str(p) for p in (paths.pidfile, paths.socket) if p.exists()]
        note = f" (stale files, cleaned at the next start: {', '.join(stale)})" if stale else ""
        say(args, {"running": False, "stale": stale}, f"no ganga-async service runs for {gangadir}{note}")
        return 3
    async with AsyncGangaService(gangadir, autostart=False) as service:
        info = await service.ping()
    info["running"] = True
    say(args, info, f"ganga-async service {info['version']} runs for {gangadir}: pid {info['pid']}, "
        f"up {info['uptime']:.0f} s, {info['connections']} connection(s), "
        f"{info['in_progress']} operation(s) in progress; log: {paths.log}")
    return 0
