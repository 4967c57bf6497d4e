"""``ganga-async tasks [show|pause|run|remove ID]``, written once against a
:class:`~.session.Session` (the daemon's operations ``tasks``, ``task`` and ``task_action``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._exceptions import JobSpecError
from .._jobfile import read_toml
from .._taskfile import is_task_file, task_from_dict
from ..config import Config
from ..model.task import UnitStatus
from . import render
from .session import Session

__all__ = ["add", "file_dir", "tasks"]

_UNITS = [str(s) for s in UnitStatus]


async def tasks(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``tasks`` lists them; ``tasks add FILE`` adds and runs the task a task file describes;
    ``tasks show ID`` one with its units; ``tasks pause|run|remove ID`` acts on one and lists
    it."""
    if args.action == "add":
        return await add(session, args, read_toml(args.file, "task file"))
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


async def add(session: Session, args: argparse.Namespace, data: dict[str, Any]) -> int:
    """Add the task of the task file ``args.file`` (parsed: ``data``), run it (unless
    ``--no-run``), and print its row."""
    if not is_task_file(data):
        raise JobSpecError("", f"{args.file}: is not a task file: it needs a [task] table with "
                           "[[task.transforms]] (a job file is submitted with ganga-async submit)")
    basedir = file_dir(args.file)
    task_from_dict(data, str(args.file), basedir=basedir)  # its mistakes named by the file
    row = await session.task_add(data["task"], basedir=basedir, token=getattr(args, "token", None),
                                 run=not getattr(args, "no_run", False))
    if render.output_format(args) == "json":
        render.print_json(row)
        return 0
    _print_rows(["id", "name", "status", "float", *_UNITS], [_row(row)], args)
    return 0


def file_dir(path: Path) -> Path:
    """The directory of a job or task file, which its relative ``inputfiles`` are relative to."""
    return path.absolute().parent


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
