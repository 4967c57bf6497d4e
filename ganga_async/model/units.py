"""Units of a task, and the index that finds them by status without looking at all of them.

A task of thousands of units takes one job's end at a time; its rules ask how many units are
active, which new ones come next, whether a transform completed and which completed units a
chain has not made a child for. Scanning every unit for each answer made a task's run time
grow with the square of its units, so each :class:`Unit` tells the :class:`UnitIndex` of its
task whenever its status changes, and the index keeps the answers up to date.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Sequence

from ..splitters.base import Overrides

__all__ = ["UnitStatus", "Unit", "UnitIndex"]


class UnitStatus(enum.StrEnum):
    """The status of a unit (see :mod:`ganga_async.model.task`)."""

    NEW = "new"
    HOLD = "hold"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Unit:
    """One piece of a transform: the overrides its job takes, its active job and history."""

    def __init__(self, index: int, overrides: Overrides, *, status: UnitStatus = UnitStatus.NEW,
                 job_id: int | None = None, history: Sequence[int] = (), runs: int = 0,
                 reason: str | None = None, parents: Sequence[int] = ()) -> None:
        self._watch: tuple[UnitIndex, int] | None = None
        self._status = status
        self.index = index
        self.overrides = dict(overrides)
        self.job_id = job_id
        self.history = list(history)
        self.runs = runs
        """Jobs run since the unit was made or last reset (``run_limit`` bounds it)."""
        self.reason = reason
        self.parents = list(parents)
        """For a unit made by a chain: the indices of the units of the input transform it
        takes the outputs of."""

    @property
    def status(self) -> UnitStatus:
        return self._status

    @status.setter
    def status(self, new: UnitStatus) -> None:
        old, self._status = self._status, new
        if self._watch is not None and old is not new:
            index, transform = self._watch
            index.moved(transform, self, old)

    def watched_by(self, index: UnitIndex, transform: int) -> None:
        """Tell ``index`` (as a unit of its ``transform``) of every change of status."""
        self._watch = (index, transform)

    def __repr__(self) -> str:
        return f"Unit({self.index}, status={self.status}, job_id={self.job_id})"


class UnitIndex:
    """The units of one task by status, per transform, kept current as statuses change.

    ``inputs[i]`` is the input transform of transform ``i``'s chain (``None`` without one),
    so that the index knows, for each chained transform, the completed units of its input
    that have no child yet (:attr:`uncovered`).
    """

    def __init__(self, transforms: Sequence[Sequence[Unit]], inputs: Sequence[int | None]) -> None:
        self.counts = [dict.fromkeys(UnitStatus, 0) for _ in transforms]
        """Units in each status, per transform."""
        self.sizes = [0 for _ in transforms]
        self.uncovered: list[set[int]] = [set() for _ in transforms]
        """Per chained transform: the indices of completed units of its input transform
        that no unit of it takes the outputs of."""
        self._units: list[dict[int, Unit]] = [{} for _ in transforms]
        self._covered: list[set[int]] = [set() for _ in transforms]
        self._chained = {p: [i for i, inp in enumerate(inputs) if inp == p] for p in set(inputs)
                         if p is not None}
        self._new: list[tuple[int, int]] = []
        for i, units in enumerate(transforms):
            for unit in units:
                self._covered[i].update(unit.parents)
        for i, units in enumerate(transforms):
            for unit in units:
                self.added(i, unit)

    @property
    def total(self) -> int:
        return sum(self.sizes)

    def added(self, transform: int, unit: Unit) -> None:
        """A unit joined ``transform``."""
        self.sizes[transform] += 1
        self._units[transform][unit.index] = unit
        self._covered[transform].update(unit.parents)
        self.uncovered[transform].difference_update(unit.parents)
        unit.watched_by(self, transform)
        self._enter(transform, unit)

    def moved(self, transform: int, unit: Unit, old: UnitStatus) -> None:
        """A unit of ``transform`` went from ``old`` to its status now."""
        self.counts[transform][old] -= 1
        if old is UnitStatus.COMPLETED:
            for child in self._chained.get(transform, ()):
                self.uncovered[child].discard(unit.index)
        self._enter(transform, unit)

    def _enter(self, transform: int, unit: Unit) -> None:
        status = unit.status
        self.counts[transform][status] += 1
        if status is UnitStatus.NEW:
            heapq.heappush(self._new, (transform, unit.index))
        elif status is UnitStatus.COMPLETED:
            for child in self._chained.get(transform, ()):
                if unit.index not in self._covered[child]:
                    self.uncovered[child].add(unit.index)

    def unit(self, transform: int, index: int) -> Unit:
        return self._units[transform][index]

    def count(self, status: UnitStatus) -> int:
        """Units of the task in ``status``."""
        return sum(counts[status] for counts in self.counts)

    def first_new(self, n: int) -> list[tuple[int, Unit]]:
        """Up to ``n`` units in status ``new``, in (transform, unit) order."""
        chosen: list[tuple[int, Unit]] = []
        while self._new and len(chosen) < n:
            transform, index = heapq.heappop(self._new)
            unit = self._units[transform].get(index)
            if unit is not None and unit.status is UnitStatus.NEW and (transform, unit) not in chosen:
                chosen.append((transform, unit))
        for transform, unit in chosen:  # they stay new until the caller gives them a job
            heapq.heappush(self._new, (transform, unit.index))
        return chosen
