"""``ganga-async tasks [show|pause|run|remove ID]``, written once against a
:class:`~.session.Session` (the daemon's operations ``tasks``, ``task`` and ``task_action``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..config import Config
from ..model.task import UnitStatus
from . import render
from .session import Session

__all__ = ["tasks"]

_UNITS = [str(s) for s in UnitStatus]


async def tasks(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``tasks`` lists them; ``tasks show ID`` one with its units; ``tasks pause|run|remove
    ID`` acts on one and lists it."""
    if args.action == "show":
        detail = await session.call("task", id=args.id)
        if render.output_format(args) == "json":
            render.print_json(detail)
            return 0
        _print_rows(["id", "name", "status", "float", *_UNITS], [_row(detail)], args)
        if detail.get("reason"):
            print(f"reason: {detail['reason']}")
        print()
        _print_rows(["transform", "unit", "status", "job", "earlier jobs", "reason"], [
            [str(u["transform"]), str(u["unit"]), u["status"],
             "" if u["job_id"] is None else str(u["job_id"]),
             ",".join(str(j) for j in u["history"]), u["reason"] or ""]
            for u in detail["unit_list"]], args)
        return 0
    if args.action in ("pause", "run", "remove"):
        rows = [await session.call("task_action", id=args.id, action=args.action)]
    else:
        rows = await session.call("tasks")
    if render.output_format(args) == "json":
        render.print_json(rows)
        return 0
    if not rows:
        print(f"no tasks in {session.gangadir}")
        return 0
    _print_rows(["id", "name", "status", "float", *_UNITS], [_row(r) for r in rows], args)
    return 0


def _row(task: dict[str, object]) -> list[str]:
    units = task["units"]
    assert isinstance(units, dict)
    return [str(task["id"]), str(task["name"]), str(task["status"]), str(task["float"]),
            *(str(units[s]) for s in _UNITS)]


def _print_rows(header: Sequence[str], rows: Sequence[Sequence[str]], args: argparse.Namespace) -> None:
    if render.output_format(args) == "tsv":
        for row in rows:
            print("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in row))
        return
    table = [list(header), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
