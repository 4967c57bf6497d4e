"""``ganga-async service start|stop|status``: the daemon of the gangadir; ``ganga-async
dashboard``: the address of its dashboard.

``service start`` exits 0 once the daemon serves, 1 if one already runs; ``service status``
exits 0 when one runs and 3 when none does; ``service stop`` exits 0 once the daemon has ended
(or when none ran). Errors exit 2, as everywhere in the command line. ``start --foreground``
runs the daemon in this process (:func:`~ganga_async.service.server.run_daemon`);
``start --dashboard`` (or ``[Service] dashboard = true``) has it serve the web dashboard too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio

from .._exceptions import ServiceError, ServiceRunningError
from ..config import Config
from ..dashboard._state import EXTRA_HINT, DashboardState, running_dashboard, url_of
from ..service import AsyncGangaService
from ..service._control import spawn_daemon
from ..service._paths import ServicePaths
from .render import say

__all__ = ["dashboard_command", "service_command"]


def service_command(args: argparse.Namespace, config: Config) -> int:
    """``ganga-async service ACTION``; the exit code."""
    gangadir = (args.gangadir or config.gangadir).expanduser().absolute()
    if args.action == "start":
        dashboard = args.dashboard or config["Service"]["dashboard"]
        if dashboard:
            _check_dashboard_extra()
        if args.foreground:
            # Imported here: the commands that only look for a running daemon need no server.
            from ..service.server import run_daemon

            addons = []
            if dashboard:
                from ..dashboard.server import Dashboard

                addons.append(Dashboard(gangadir, config["Service"]))
            # Started by `service start` (with a ready pipe), stderr is a file: log to the log only.
            return run_daemon(gangadir, config, foreground=args.ready_fd is None,
                              ready_fd=args.ready_fd, verbose=args.verbose, addons=addons)
        try:
            pid = spawn_daemon(gangadir, timeout=config["Service"]["start_timeout"],
                               verbose=args.verbose, dashboard=args.dashboard)
        except ServiceRunningError as exc:
            say(args, {"running": True, "pid": exc.pid, "started": False}, f"{exc}")
            return 1
        found = DashboardState(gangadir).read() if dashboard else None
        url = url_of(found["port"], found["token"]) if found else None
        say(args, {"running": True, "pid": pid, "started": True, "dashboard": url},
            f"ganga-async service started for {gangadir} (pid {pid}); log: "
            f"{ServicePaths(gangadir).log}" + (f"\ndashboard: {url}" if url else ""))
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
    found = DashboardState(gangadir).read()
    info["dashboard"] = found["url"] if found else None
    say(args, info, f"ganga-async service {info['version']} runs for {gangadir}: pid {info['pid']}, "
        f"up {info['uptime']:.0f} s, {info['connections']} connection(s), "
        f"{info['in_progress']} operation(s) in progress; log: {paths.log}"
        + (f"; dashboard: {found['url']} (ganga-async dashboard prints it with its token)"
           if found else ""))
    return 0


def _check_dashboard_extra() -> None:
    """A one-line error, before any daemon starts, when the dashboard cannot be served."""
    missing = []
    for name in ("starlette", "uvicorn"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ServiceError(f"the dashboard needs {' and '.join(missing)}, which are not installed: "
                           f"{EXTRA_HINT}")


def dashboard_command(args: argparse.Namespace, config: Config) -> int:
    """``ganga-async dashboard [--open]``: print (or open) the running dashboard's URL."""
    gangadir = (args.gangadir or config.gangadir).expanduser().absolute()
    found = running_dashboard(gangadir)
    url = url_of(found["port"], found["token"])
    say(args, {"url": url, "port": found["port"], "pid": found["pid"]}, url)
    if args.open:
        import webbrowser

        if not webbrowser.open(url):
            raise ServiceError("no web browser could be started here; open the URL above in one "
                               f"(from a laptop: ssh -L 8765:127.0.0.1:{found['port']} this-host, "
                               "then the same URL with port 8765)")
    return 0
