"""The commands of ``ganga-async``, each written once, whatever answers it.

A command is ``async def command(session, args, config) -> exit code`` over a
:class:`~.session.Session`: the daemon's client when a daemon runs for the gangadir, otherwise
an engine of the command's own (:func:`~.session.open_session`), which starts the daemon first
for the commands in :data:`LIVE`. :mod:`.jobs`, :mod:`.listing` and :mod:`.prepared` hold them,
:mod:`.ids` reads their job ids and ranges, :mod:`.render` prints everything they print,
:mod:`.credentials` and :mod:`.service` (``service`` and ``dashboard``) are the commands that need
neither a daemon's client nor an engine of their own, and :mod:`.completion` answers the shells'
completion scripts.
:func:`run` runs one from a parsed command line; :mod:`ganga_async.cli` parses it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from typing import Any

from ..config import Config, load_config
from . import jobs, listing, prepared
from .credentials import credentials
from .service import dashboard_command, service_command
from .session import Session, open_session
from .tasks import tasks

__all__ = ["COMMANDS", "LIVE", "READ_ONLY", "SERVED", "Session", "open_session", "run",
           "dashboard_command", "service_command"]

Command = Callable[[Session, argparse.Namespace, Config], Coroutine[Any, Any, int]]

COMMANDS: dict[str, Command] = {
    "submit": jobs.submit, "jobs": listing.jobs, "show": jobs.show, "wait": jobs.wait,
    "kill": jobs.kill, "release": jobs.release, "resubmit": jobs.resubmit, "remove": jobs.remove,
    "peek": jobs.peek,
    "demo": jobs.demo, "shareref": prepared.shareref, "box": prepared.box, "tasks": tasks,
}
"""The commands that open a session, by name."""

SERVED = frozenset(COMMANDS)
"""The commands a running daemon serves: every one that opens an engine, so that two engines
never monitor one repository. Without a daemon they open an engine of their own."""

READ_ONLY = frozenset({"jobs", "show", "peek", "shareref", "box"})
"""The commands whose engine never contacts a backend (``monitoring=False``)."""

LIVE = frozenset({"submit", "jobs", "show", "wait", "kill", "release", "resubmit", "remove", "demo",
                  "tasks"})
"""The commands that list or wait: they start the gangadir's daemon when none runs
(``[Service] autostart``), so that what they print is true now."""


async def run(args: argparse.Namespace, config: Config | None = None) -> int:
    """Run the parsed command line ``args`` (any command but ``service``) with ``config``
    (default: :func:`~ganga_async.config.load_config`); its exit code."""
    config = load_config() if config is None else config
    if args.command == "credentials":
        return await credentials(args, config)
    monitoring = args.command not in READ_ONLY
    async with open_session(args.gangadir, config, monitoring=monitoring,
                            autostart=args.command in LIVE, log_json=args.log_json) as session:
        return await COMMANDS[args.command](session, args, config)
