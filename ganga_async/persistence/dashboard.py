"""The repository reads behind the dashboard: one master's subjobs at a glance, read in SQL.

Each read is one or two queries over the ``subjobs`` table of one master (its primary key is
``(job_id, idx)``, so they touch that master's rows only), returning little: a page of rows,
one character per subjob, counts per time bucket. At 100,000 subjobs each takes a few tens of
milliseconds and never builds a Python object per subjob. They read what the repository holds:
call :meth:`Repository.flush` first to see the engine's latest changes.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from ..states import Status
from .repository import Repository

__all__ = ["SubjobPage", "failure_reasons", "master_times", "status_codes", "subjob_attempts",
           "subjob_page", "timeline"]

_FAILED = Status.FAILED.code


class SubjobPage(NamedTuple):
    """How many subjobs match, and the rows of the page asked for: ``(index, status code,
    backend id, reason, submit counter, submitted, running, final)``."""

    total: int
    rows: list[tuple[int, int, str | None, str | None, int, float, float, float]]


async def master_times(repository: Repository) -> dict[int, dict[str, float]]:
    """Each master's status times (``{"submitting": epoch, "completed": epoch, ...}``)."""
    async with repository.db.execute("SELECT id, times FROM jobs") as cur:
        return {job_id: json.loads(times or "{}") for job_id, times in await cur.fetchall()}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def subjob_page(repository: Repository, job_id: int, *, status: Status | None = None,
                      q: str | None = None, offset: int = 0, limit: int = 100) -> SubjobPage:
    """The subjobs of ``job_id`` in index order, only those in ``status`` and those whose index
    is ``q`` or whose backend id or reason contains it, from ``offset``, at most ``limit``."""
    where = "job_id=?"
    params: list[Any] = [job_id]
    if status is not None:
        where += " AND status=?"
        params.append(status.code)
    if q:
        where += " AND (CAST(idx AS TEXT)=? OR backend_id LIKE ? ESCAPE '\\' OR reason LIKE ? ESCAPE '\\')"
        params += [q, _like(q), _like(q)]
    db = repository.db
    async with db.execute(f"SELECT COUNT(*) FROM subjobs WHERE {where}", params) as cur:  # noqa: S608
        row = await cur.fetchone()
    total = int(row[0]) if row else 0
    async with db.execute(
        "SELECT idx, status, backend_id, reason, submit_counter, t_submitted, t_running, t_final "
        f"FROM subjobs WHERE {where} ORDER BY idx LIMIT ? OFFSET ?",  # noqa: S608
        [*params, limit, offset],
    ) as cur:
        rows = [tuple(r) for r in await cur.fetchall()]
    return SubjobPage(total, rows)


async def status_codes(repository: Repository, job_id: int) -> str:
    """One character per subjob of ``job_id``, in index order: ``chr(48 + status code)``."""
    async with repository.db.execute(
        "SELECT group_concat(char(48 + status), '') FROM "
        "(SELECT status FROM subjobs WHERE job_id=? ORDER BY idx)", (job_id,),
    ) as cur:
        row = await cur.fetchone()
    return (row[0] if row else None) or ""


async def failure_reasons(repository: Repository, job_id: int, limit: int = 50
                          ) -> list[tuple[str, int, int]]:
    """The reasons of the failed subjobs of ``job_id``: ``(reason, count, lowest index)``, most
    frequent first."""
    async with repository.db.execute(
        "SELECT COALESCE(reason, ''), COUNT(*), MIN(idx) FROM subjobs WHERE job_id=? AND status=? "
        "GROUP BY COALESCE(reason, '') ORDER BY COUNT(*) DESC, MIN(idx) LIMIT ?",
        (job_id, _FAILED, limit),
    ) as cur:
        return [(str(r), int(n), int(i)) for r, n, i in await cur.fetchall()]


async def subjob_attempts(repository: Repository, job_id: int) -> tuple[int, int]:
    """The most submissions of one subjob of ``job_id``, and of all of them together."""
    async with repository.db.execute(
        "SELECT MAX(submit_counter), SUM(submit_counter) FROM subjobs WHERE job_id=?", (job_id,),
    ) as cur:
        row = await cur.fetchone()
    return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)


async def timeline(repository: Repository, job_id: int, buckets: int, now: float
                   ) -> dict[str, Any]:
    """How many subjobs of ``job_id`` started (``t_running``) and ended (``t_final``) in each of
    ``buckets`` equal intervals from the first start to the last change (or ``now`` while any
    runs), and how many were running at the end of each."""
    db = repository.db
    async with db.execute(
        "SELECT MIN(NULLIF(t_running, 0)), MAX(t_running), MAX(t_final), "
        "SUM(t_running > 0 AND t_final = 0) FROM subjobs WHERE job_id=?", (job_id,),
    ) as cur:
        row = await cur.fetchone()
    first, last_start, last_end, open_runs = row if row else (None, None, None, 0)
    if not first:
        return {"t0": None, "t1": None, "edges": [], "started": [], "ended": [], "running": []}
    t0 = float(first)
    t1 = now if open_runs else max(float(last_start or t0), float(last_end or t0))
    t1 = max(t1, t0 + 1e-3)
    width = (t1 - t0) / buckets
    histograms = []
    for column in ("t_running", "t_final"):
        counts = [0] * buckets
        async with db.execute(
            f"SELECT MIN(CAST(({column} - ?) / ? AS INTEGER), ?), COUNT(*) FROM subjobs "  # noqa: S608
            f"WHERE job_id=? AND {column} >= ? GROUP BY 1", (t0, width, buckets - 1, job_id, t0),
        ) as cur:
            for bucket, n in await cur.fetchall():
                counts[max(0, int(bucket))] += int(n)
        histograms.append(counts)
    started, ended = histograms
    running, level = [], 0
    for s, e in zip(started, ended, strict=True):
        level += s - e
        running.append(max(level, 0))
    edges = [round(t0 + i * width, 3) for i in range(buckets + 1)]
    if not math.isfinite(width):
        edges = []
    return {"t0": t0, "t1": t1, "edges": edges, "started": started, "ended": ended,
            "running": running}
