"""A master's subjobs at a glance, from a copy of its in-memory table (no I/O).

Each function reads a :class:`~ganga_async.model.subjobs.SubjobColumns` (``job.subjobs.columns()``)
and returns little: one character per subjob, a page of rows, counts per time bucket. They
build no object per subjob, and use the arrays' C loops (``bytes.translate``, ``sorted``,
``bisect``) where a Python loop over 100,000 subjobs would cost tens of milliseconds.
"""

from __future__ import annotations

import bisect
import collections
import re
from typing import Any

from ..model.subjobs import SubjobColumns
from ..states import Status

__all__ = ["LEGEND", "attempts", "cells", "page", "reasons", "timeline"]

LEGEND = [str(Status.from_code(code)) for code in range(len(Status))]
"""The statuses in code order: a heat-map cell ``c`` is ``LEGEND[ord(c) - 48]``."""

_CELL = bytes((48 + code) % 256 for code in range(256))


def cells(columns: SubjobColumns) -> str:
    """One character per subjob: ``chr(48 + status code)``."""
    return columns.status.translate(_CELL).decode("ascii")


def indices_in(columns: SubjobColumns, status: Status) -> list[int]:
    """The subjobs in ``status``, found by the regular expression engine's C loop."""
    return [m.start() for m in re.finditer(re.escape(bytes([status.code])), columns.status)]


def _matching(columns: SubjobColumns, status: Status | None, q: str | None) -> list[int] | range:
    found: list[int] | range = range(len(columns.status))
    if status is not None:
        found = indices_in(columns, status)
    if q:
        hits = {int(q)} if q.isdecimal() else set()
        hits.update(i for i, reason in columns.reason.items() if q in reason)
        hits.update(i for i, backend_id in enumerate(columns.backend_id)
                    if backend_id is not None and q in backend_id)
        found = [i for i in found if i in hits]
    return found


def page(columns: SubjobColumns, job_id: int, *, status: Status | None, q: str | None,
         offset: int, limit: int) -> dict[str, Any]:
    """``{"total", "rows"}``: the subjobs in ``status`` whose index is ``q`` or whose backend
    id or reason contains it, from ``offset``, at most ``limit``, in index order."""
    found = _matching(columns, status, q)
    rows = []
    for i in found[offset:offset + limit]:
        t_run, t_final = columns.t_running[i], columns.t_final[i]
        rows.append({"index": i, "fqid": f"{job_id}.{i}", "status": LEGEND[columns.status[i]],
                     "backend_id": columns.backend_id[i], "reason": columns.reason.get(i),
                     "attempts": columns.submit_counter[i], "started": t_run or None,
                     "ended": t_final or None})
    return {"total": len(found), "rows": rows}


def reasons(columns: SubjobColumns, job_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The failed subjobs' reasons, grouped, most frequent first, each with its first subjob."""
    counts: collections.Counter[str] = collections.Counter()
    example: dict[str, int] = {}
    for i in indices_in(columns, Status.FAILED):
        reason = columns.reason.get(i, "")
        counts[reason] += 1
        example.setdefault(reason, i)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], example[item[0]]))[:limit]
    return [{"reason": reason, "count": n, "example": f"{job_id}.{example[reason]}"}
            for reason, n in ranked]


def attempts(columns: SubjobColumns) -> dict[str, int]:
    """The most submissions of one subjob, and of all of them together."""
    counters = columns.submit_counter
    return {"max": max(counters, default=0), "total": sum(counters)}


def timeline(columns: SubjobColumns, buckets: int, now: float) -> dict[str, Any]:
    """How many subjobs started and ended in each of ``buckets`` equal intervals from the first
    start to the last start or end (``now`` while any runs), and how many ran at each end."""
    starts = sorted(t for t in columns.t_running if t)
    if not starts:
        return {"t0": None, "t1": None, "edges": [], "started": [], "ended": [], "running": []}
    ends = sorted(t for t in columns.t_final if t)
    running_now = any(s and not e for s, e in zip(columns.t_running, columns.t_final, strict=True))
    t0 = starts[0]
    t1 = now if running_now else max(starts[-1], ends[-1] if ends else t0)
    t1 = max(t1, t0 + 1e-3)
    width = (t1 - t0) / buckets
    edges = [t0 + i * width for i in range(buckets)] + [t1]

    def histogram(times: list[float]) -> list[int]:
        marks = [bisect.bisect_left(times, edge) for edge in edges[1:-1]]
        cuts = [bisect.bisect_left(times, t0), *marks, len(times)]
        return [b - a for a, b in zip(cuts, cuts[1:], strict=False)]

    started, ended = histogram(starts), histogram(ends)
    running, level = [], 0
    for s, e in zip(started, ended, strict=True):
        level += s - e
        running.append(max(level, 0))
    return {"t0": t0, "t1": t1, "edges": [round(edge, 3) for edge in edges], "started": started,
            "ended": ended, "running": running}
