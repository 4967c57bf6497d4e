"""Reads of the ``jobs`` table that answer a selection without loading or listing every job:
the ids of all masters (by the primary key) and of those a selection names (by status through
the ``jobs_status`` index, by id range through the key), so that ``jobs.select(status=...)``
on a repository of 100,000 jobs reads the few thousand rows it returns."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from .repository import Repository

__all__ = ["job_ids", "select_job_ids", "summary_rows"]


async def job_ids(repository: Repository) -> list[int]:
    """The ids of every master, in id order (queued writes flushed first)."""
    await repository.flush()
    async with repository.db.execute("SELECT id FROM jobs ORDER BY id") as cursor:
        return [row[0] for row in await cursor.fetchall()]


async def select_job_ids(
    repository: Repository, *, minid: int | None = None, maxid: int | None = None,
    statuses: Sequence[str] | None = None, name: str | None = None,
    application: str | None = None, backend: str | None = None,
) -> list[int]:
    """The ids of the masters with ``minid <= id <= maxid``, in one of ``statuses``, whose name
    matches the shell pattern ``name`` (``*``, ``?``, ``[...]``, case-sensitive, as
    :func:`fnmatch.fnmatchcase`), running ``application`` on ``backend``; ``None`` selects
    all. In id order, queued writes flushed first."""
    await repository.flush()
    where: list[str] = []
    params: list[Any] = []
    if minid is not None:
        where.append("id >= ?")
        params.append(minid)
    if maxid is not None:
        where.append("id <= ?")
        params.append(maxid)
    if statuses is not None:
        where.append(f"status IN ({', '.join('?' for _ in statuses)})")
        params.extend(statuses)
    for column, value in (("application", application), ("backend", backend)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    # Without a name to match, the status index (which holds the ids) answers alone: the rows
    # themselves, scattered over the whole table, are not read.
    sql = "SELECT id FROM jobs" if name is None else "SELECT id, name FROM jobs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    async with repository.db.execute(sql + " ORDER BY id", params) as cursor:
        rows = await cursor.fetchall()
    if name is None:
        return [row[0] for row in rows]
    return [job_id for job_id, job_name in rows if fnmatch.fnmatchcase(job_name, name)]


_SUMMARY = ("SELECT id, status, name, COALESCE(n_subjobs, 0), application, backend, backend_id, "
            "comment FROM jobs")
_CHUNK = 10_000
"""Ids per ``IN (...)`` list (SQLite allows 32,766 variables since 3.32)."""


async def summary_rows(
    repository: Repository, live: Mapping[int, str], *, status: str | None = None,
    name: str | None = None, ids: Sequence[int] | None = None,
) -> list[tuple[Any, ...]]:
    """``(id, status, name, subjobs, application, backend, backend_id, comment)`` per master
    (``subjobs`` 0 for a job without), in id order or in the order of ``ids``; only those in
    ``status`` (through the index), named ``name``, among ``ids``. ``live`` gives the status
    of the jobs loaded in memory, which wins over the stored one. Queued writes are flushed
    first, so the two agree but for a change made while the rows are read."""
    await repository.flush()
    where, params = [], []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if name is not None:
        where.append("name = ?")
        params.append(name)
    sql = _SUMMARY + "".join(f" {'AND' if k else 'WHERE'} {w}" for k, w in enumerate(where))
    found: list[tuple[Any, ...]] = []
    if ids is None:
        async with repository.db.execute(sql + " ORDER BY id", params) as cursor:
            found = list(await cursor.fetchall())  # type: ignore[arg-type]
    else:
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start:start + _CHUNK])
            marks = ", ".join("?" * len(chunk))
            async with repository.db.execute(
                    f"{sql} {'AND' if where else 'WHERE'} id IN ({marks})",  # noqa: S608
                    [*params, *chunk]) as cursor:
                found += await cursor.fetchall()  # type: ignore[arg-type]
        position = {job_id: k for k, job_id in enumerate(ids)}
        found.sort(key=lambda row: position[row[0]])
    if not live:
        return found
    rows = []
    for row in found:
        now = live.get(row[0])
        if now is not None and now != row[1]:
            if status is not None and now != status:
                continue
            row = (row[0], now, *row[2:])
        rows.append(row)
    return rows
