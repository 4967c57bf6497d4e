"""``ganga-async jobs``: the list of jobs, filtered, once or kept up to date (``--watch``).

Written once against a :class:`~.session.Session`, like every command. The filters are those
squeue users reach for: ``--status`` (one status or several, ``running,submitted``), ``--name``
(a shell pattern, ``sim-*``) and ``--last N`` (the N most recent jobs). ``--watch`` redraws the
list as ``squeue -i`` does: at once when a job changes status (the session's events), and
every ``SECONDS`` anyway, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import fnmatch
from typing import Any

import anyio

from ..config import Config
from ..states import Status
from . import render
from .ids import parse_statuses
from .session import Session

__all__ = ["jobs", "selected"]


async def jobs(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``jobs [--status S[,S...]] [--name PATTERN] [--last N] [--watch [SECONDS]]``."""
    if args.watch is None:
        return render.print_jobs(await selected(session, args), args, session.gangadir)
    async with session.events(subjobs=False, types=["status"]) as events:
        ended = False
        while True:
            render.print_watched(await selected(session, args), args, session.gangadir, args.watch)
            with anyio.move_on_after(args.watch):
                if ended:
                    await anyio.sleep_forever()
                async for _ in events:
                    break  # a job changed: redraw now
                else:
                    ended = True


async def selected(session: Session, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The summaries of the jobs ``args`` select, oldest first."""
    statuses = [str(Status.parse(s)) for s in parse_statuses(args.status)] if args.status else []
    rows = await session.jobs(status=statuses[0] if len(statuses) == 1 else None)
    if statuses:
        rows = [row for row in rows if row["status"] in statuses]
    if args.name:
        rows = [row for row in rows if fnmatch.fnmatchcase(row["name"] or "", args.name)]
    if args.last is not None:
        rows = sorted(rows, key=lambda row: int(row["id"]))[-args.last:] if args.last else []
    return rows
