"""The subjob rows waiting for the repository's next flush, and the statements that write them.

Two kinds of queued rows:

- a **row**: the mutable columns of one subjob, as they were when queued (the latest queued
  wins), written one ``UPDATE`` each;
- a **move**: a subjob whose status and timestamps changed and nothing else (a sweep found it
  running, see ``machine.move_many``). Only its master's table and the index are queued; the
  values are read from the table when the flush starts, in the event loop, so they are the
  latest whatever was queued between. Consecutive subjobs whose five moved columns are equal
  (``status, t_submitted, t_running, t_final, retry_at``: a sweep that found 10^5 subjobs of an
  array started in the same second) are written as one ``UPDATE ... WHERE idx BETWEEN``, and
  the rows are built in the database thread from a copy of the table's columns.

Rows are written before moves: a move is never older than a row queued before the flush
(it is read at the flush), and a row never holds a moved column newer than the move's.
"""

from __future__ import annotations

import dataclasses
import operator
from array import array
from collections.abc import Iterable, Iterator

from ..model.subjobs import SubjobTable

__all__ = ["SubjobUpdate", "SubjobWrites", "PendingSubjobs", "MOVE_SQL"]

SubjobUpdate = tuple[int, str | None, int | None, str | None, int, float, float, float, float]
"""The mutable columns of a subjob, in ``_SUB_UPDATE`` order (see the repository)."""

MOVE_SQL = ("UPDATE subjobs SET status=?, t_submitted=?, t_running=?, t_final=?, retry_at=? "
            "WHERE job_id=? AND idx BETWEEN ? AND ?")

_COPY_FROM = 8
"""A master with more than ``1/_COPY_FROM`` of its subjobs moved has its columns copied (a few
C-speed copies) and the rows built in the database thread; fewer are read row by row."""

Moved = tuple[float, float, float, float, float]
"""(status code, t_submitted, t_running, t_final, retry_at) of a moved subjob."""


@dataclasses.dataclass(slots=True)
class _Snapshot:
    """The moved subjobs of one master as the flush found them: ``values[n]`` is subjob
    ``indices[n]``'s, either made already or to be made from copied ``columns``."""

    job_id: int
    indices: list[int]
    values: list[Moved] | None = None
    columns: tuple[bytes, array[float], array[float], array[float], dict[int, float]] | None = None

    def rows(self) -> Iterator[Moved]:
        if self.values is not None:
            return iter(self.values)
        assert self.columns is not None
        status, t_submitted, t_running, t_final, retry_at = self.columns
        indices = self.indices
        if len(indices) == 1:
            i = indices[0]
            return iter([(status[i], t_submitted[i], t_running[i], t_final[i], retry_at.get(i, 0.0))])
        get = operator.itemgetter(*indices)
        waiting = [retry_at.get(i, 0.0) for i in indices] if retry_at else [0.0] * len(indices)
        return zip(get(status), get(t_submitted), get(t_running), get(t_final), waiting, strict=True)


@dataclasses.dataclass(slots=True)
class PendingSubjobs:
    """What one flush writes (taken from :class:`SubjobWrites`), and what it puts back when the
    write fails."""

    rows: dict[tuple[int, int], SubjobUpdate]
    moved: dict[int, tuple[SubjobTable, set[int]]]
    snapshots: list[_Snapshot]

    def __bool__(self) -> bool:
        return bool(self.rows or self.moved)

    def row_params(self) -> Iterator[tuple[object, ...]]:
        """Parameters of the one-row ``UPDATE`` (made in the database thread)."""
        return ((*values, j, i) for (j, i), values in self.rows.items())

    def move_params(self) -> Iterator[tuple[float | int, ...]]:
        """Parameters of :data:`MOVE_SQL`: one for each run of consecutive moved subjobs of a
        master with equal values (made in the database thread)."""
        for snapshot in self.snapshots:
            job_id = snapshot.job_id
            first = last = -2
            current: Moved | None = None
            for index, values in zip(snapshot.indices, snapshot.rows(), strict=True):
                if index == last + 1 and values == current:
                    last = index
                    continue
                if current is not None:
                    yield (*current, job_id, first, last)
                first = last = index
                current = values
            if current is not None:
                yield (*current, job_id, first, last)


class SubjobWrites:
    """The subjob rows queued since the last flush (see the module)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, int], SubjobUpdate] = {}
        self.moved: dict[int, tuple[SubjobTable, set[int]]] = {}

    def __bool__(self) -> bool:
        return bool(self.rows or self.moved)

    def queue_row(self, job_id: int, idx: int, values: SubjobUpdate) -> None:
        self.rows[(job_id, idx)] = values

    def queue_moved(self, job_id: int, table: SubjobTable, indices: Iterable[int]) -> None:
        found = self.moved.get(job_id)
        if found is None or found[0] is not table:
            self.moved[job_id] = (table, set(indices))
        else:
            found[1].update(indices)

    def drop(self, job_id: int) -> None:
        """Forget what is queued for the subjobs of ``job_id`` (they were deleted)."""
        for key in [k for k in self.rows if k[0] == job_id]:
            del self.rows[key]
        self.moved.pop(job_id, None)

    def take(self) -> PendingSubjobs:
        """Everything queued, for one flush; the moved values are read now."""
        rows, self.rows = self.rows, {}
        moved, self.moved = self.moved, {}
        snapshots = []
        for job_id, (table, chosen) in moved.items():
            indices = sorted(chosen)
            snapshot = _Snapshot(job_id, indices)
            if len(indices) * _COPY_FROM < len(table):
                status, t_sub, t_run, t_fin, waiting = (table.status, table.t_submitted,
                                                         table.t_running, table.t_final,
                                                         table.retry_at)
                snapshot.values = [(status[i], t_sub[i], t_run[i], t_fin[i], waiting.get(i, 0.0))
                                   for i in indices]
            else:
                snapshot.columns = (bytes(table.status), array("d", table.t_submitted),
                                    array("d", table.t_running), array("d", table.t_final),
                                    dict(table.retry_at))
            snapshots.append(snapshot)
        return PendingSubjobs(rows, moved, snapshots)

    def restore(self, pending: PendingSubjobs) -> None:
        """Queue again what a failed flush did not write (what was queued since wins)."""
        for key, values in pending.rows.items():
            self.rows.setdefault(key, values)
        for job_id, (table, indices) in pending.moved.items():
            self.queue_moved(job_id, table, indices)
