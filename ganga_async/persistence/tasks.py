"""Tasks in the repository: one row per task (its transforms' descriptions as JSON) and one
row per unit, so that an engine that opens finds every task where the last one left it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import aiosqlite

from .._exceptions import GangaAsyncError
from .._log import get_logger
from ..model.task import CoreTask, CoreTransform, TaskStatus, Unit, UnitStatus


class RowStore(Protocol):
    """What the task rows need of :class:`~ganga_async.persistence.repository.Repository`
    (which imports this module for the tables and the tasks' ShareDir owners)."""

    @property
    def db(self) -> aiosqlite.Connection: ...

    async def write(self, statements: Iterable[tuple[str, Sequence[Any]]],
                    many: Iterable[tuple[str, Iterable[Sequence[Any]]]] = ()) -> None: ...

__all__ = ["TASK_TABLES", "TASK_TOKENS", "insert_task", "token_task", "save_task", "save_units",
           "save_transforms", "delete_task", "load_tasks", "prepared_task_owners", "task_holder"]

log = get_logger(__name__)

TASK_TABLES = """
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    float INTEGER NOT NULL,
    transforms TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE task_units (
    task_id INTEGER NOT NULL,
    trf INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    overrides TEXT NOT NULL,
    job_id INTEGER,
    history TEXT NOT NULL,
    runs INTEGER NOT NULL,
    reason TEXT,
    parents TEXT NOT NULL,
    PRIMARY KEY (task_id, trf, idx)
) WITHOUT ROWID;
"""
"""The tables of schema version 6."""

TASK_TOKENS = """
CREATE TABLE task_tokens (token TEXT PRIMARY KEY, task_id INTEGER NOT NULL, created REAL NOT NULL);
"""
"""The table of schema version 7: the token a task was added with (``task_add``), written with
the task, so that a repeated request finds it instead of adding another."""

_UNIT = ("INSERT OR REPLACE INTO task_units (task_id, trf, idx, status, overrides, job_id, "
         "history, runs, reason, parents) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _unit_row(task_id: int, trf: int, unit: Unit) -> tuple[Any, ...]:
    return (task_id, trf, unit.index, str(unit.status), json.dumps(unit.overrides), unit.job_id,
            json.dumps(unit.history), unit.runs, unit.reason, json.dumps(unit.parents))


async def insert_task(repository: RowStore, task: CoreTask, token: str | None = None) -> int:
    """Store a new task with all its units (and the ``token`` it was added with) in one
    transaction; returns its id."""
    async with repository.db.execute("SELECT COALESCE(MAX(id) + 1, 0) FROM tasks") as cur:
        row = await cur.fetchone()
    task_id = int(row[0]) if row else 0
    transforms = json.dumps([trf.to_dict() for trf in task.transforms])
    await repository.write(
        [("INSERT INTO tasks (id, name, status, float, transforms, created) VALUES (?, ?, ?, ?, ?, ?)",
          (task_id, task.name, str(task.status), task.float, transforms, time.time()))],
        [(_UNIT, [_unit_row(task_id, i, unit) for i, _, unit in task.units()]),
         ("INSERT INTO task_tokens VALUES (?, ?, ?)",
          [(token, task_id, time.time())] if token is not None else [])])
    return task_id


async def token_task(repository: RowStore, token: str) -> int | None:
    """The id of the task added with ``token``, or None."""
    async with repository.db.execute("SELECT task_id FROM task_tokens WHERE token=?", (token,)) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else None


async def save_task(repository: RowStore, task: CoreTask) -> None:
    """Write the task's status and float."""
    assert task.id is not None
    await repository.write([("UPDATE tasks SET status=?, float=? WHERE id=?",
                             (str(task.status), task.float, task.id))])


async def save_units(repository: RowStore, task: CoreTask,
                     units: Iterable[tuple[int, Unit]]) -> None:
    """Write these units of the task (transform index, unit), its status, and delete the
    units it dropped (``task.dropped``), together."""
    assert task.id is not None
    task_id = task.id
    dropped, task.dropped = task.dropped, []
    try:
        await repository.write(
            [("UPDATE tasks SET status=?, float=? WHERE id=?", (str(task.status), task.float, task_id))],
            [("DELETE FROM task_units WHERE task_id=? AND trf=? AND idx=?",
              [(task_id, i, idx) for i, idx in dropped]),
             (_UNIT, [_unit_row(task_id, i, unit) for i, unit in units])])
    except BaseException:
        task.dropped[:0] = dropped
        raise


def task_holder(task_id: int, transform: int) -> str:
    """The ShareRef holder of a transform's prepared application: ``task:<id>.<transform>``."""
    return f"task:{task_id}.{transform}"


async def prepared_task_owners(repository: RowStore) -> list[tuple[str, str]]:
    """``(holder, ShareDir name)`` of every stored transform whose application is prepared."""
    owners = []
    async with repository.db.execute("SELECT id, transforms FROM tasks ORDER BY id") as cur:
        for task_id, transforms in await cur.fetchall():
            for i, trf in enumerate(json.loads(transforms)):
                prepared = trf["job"]["application"].get("is_prepared")
                if isinstance(prepared, dict) and prepared.get("name"):
                    owners.append((task_holder(task_id, i), prepared["name"]))
    return owners


async def save_transforms(repository: RowStore, task: CoreTask) -> None:
    """Write the descriptions of the task's transforms (an application unprepared)."""
    assert task.id is not None
    transforms = json.dumps([trf.to_dict() for trf in task.transforms])
    await repository.write([("UPDATE tasks SET transforms=? WHERE id=?", (transforms, task.id))])


async def delete_task(repository: RowStore, task_id: int) -> None:
    await repository.write([("DELETE FROM task_units WHERE task_id=?", (task_id,)),
                            ("DELETE FROM tasks WHERE id=?", (task_id,))])


async def load_tasks(repository: RowStore) -> list[CoreTask]:
    """Every stored task with its transforms and units, by id."""
    db = repository.db
    async with db.execute("SELECT id, name, status, float, transforms FROM tasks ORDER BY id") as cur:
        rows = list(await cur.fetchall())
    tasks: dict[int, CoreTask] = {}
    for task_id, name, status, float_, transforms in rows:
        try:
            task = CoreTask(name=name, float=float_,
                            transforms=[CoreTransform.from_dict(t) for t in json.loads(transforms)])
            task.id, task.status = task_id, TaskStatus(status)
        except (GangaAsyncError, LookupError, TypeError, ValueError) as exc:
            # One task that cannot be read (a plugin gone) must not keep the engine closed.
            log.error("a stored task cannot be read; it is left out", task_id=task_id,
                      error=str(exc))
            continue
        tasks[task_id] = task
    async with db.execute("SELECT task_id, trf, idx, status, overrides, job_id, history, runs, "
                          "reason, parents FROM task_units ORDER BY task_id, trf, idx") as cur:
        for (task_id, trf, idx, status, overrides, job_id, history, runs, reason,
             parents) in await cur.fetchall():
            if task_id not in tasks:
                continue
            tasks[task_id].transforms[trf].units.append(Unit(
                idx, json.loads(overrides), status=UnitStatus(status), job_id=job_id,
                history=json.loads(history), runs=runs, reason=reason,
                parents=json.loads(parents)))
    return list(tasks.values())
