"""The compact table in which a master keeps the state of its subjobs."""

from __future__ import annotations

import dataclasses
from array import array
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..states import FINAL, Status

__all__ = ["SubjobColumns", "SubjobTable"]


@dataclasses.dataclass(frozen=True, slots=True)
class SubjobColumns:
    """A copy of a master's subjob table taken at one moment, for readers that look at many
    subjobs at once (the dashboard): copying the compact arrays costs well under a
    millisecond per 100,000 subjobs, and nothing the reader does can change the engine's."""

    status: bytes
    """One status code per subjob (``Status.from_code``)."""
    backend_id: list[str | None]
    reason: dict[int, str]
    submit_counter: array[int]
    t_running: array[float]
    t_final: array[float]


class SubjobTable:
    """The state of a master's subjobs, held in parallel compact arrays (about 150 bytes each).

    ``counts[status.code]`` is kept in step with ``status`` so the master's derived status
    costs nothing to recompute. Only the state machine (:mod:`ganga_async.model.machine`)
    changes a status; the split stage appends rows.
    """

    __slots__ = ("status", "overrides", "backend_id", "exitcode", "reason", "submit_counter",
                 "t_submitted", "t_running", "t_final", "counts", "retry_at")

    def __init__(self) -> None:
        self.status = bytearray()
        self.overrides: list[str | None] = []
        self.backend_id: list[str | None] = []
        self.exitcode: list[int | None] = []
        self.reason: dict[int, str] = {}
        self.submit_counter = array("H")
        self.t_submitted = array("d")
        self.t_running = array("d")
        self.t_final = array("d")
        self.counts = [0] * len(Status)
        self.retry_at: dict[int, float] = {}
        """When each subjob waiting to be retried is due (only those waiting)."""

    def __len__(self) -> int:
        return len(self.status)

    def append(self, status: Status, overrides: str | None, submit_counter: int = 0,
               backend_id: str | None = None, exitcode: int | None = None, reason: str | None = None,
               t_submitted: float = 0.0, t_running: float = 0.0, t_final: float = 0.0,
               retry_at: float = 0.0) -> None:
        index = len(self.status)
        self.status.append(status.code)
        self.counts[status.code] += 1
        self.overrides.append(overrides)
        self.backend_id.append(backend_id)
        self.exitcode.append(exitcode)
        if reason:
            self.reason[index] = reason
        self.submit_counter.append(submit_counter)
        self.t_submitted.append(t_submitted)
        self.t_running.append(t_running)
        self.t_final.append(t_final)
        if retry_at:
            self.retry_at[index] = retry_at

    def extend(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Append stored rows at once, as :meth:`append` does one by one: each row is
        ``(idx, status code, overrides, backend_id, exitcode, reason, submit_counter,
        t_submitted, t_running, t_final, retry_at)`` (the repository's ``subjob_rows``), the
        rows in index order following those already here. A column at a time: about a fifth
        of the CPU of :meth:`append` per row."""
        if not rows:
            return
        start = len(self.status)
        (_, codes, overrides, backend_id, exitcode, reason, counter, t_submitted, t_running,
         t_final, retry_at) = zip(*rows, strict=True)
        found = Counter(codes)
        for code in found:
            Status.from_code(code)  # an unknown code is an error, as in append()
        counts = self.counts
        for code, count in found.items():
            counts[code] += count
        self.status.extend(codes)
        self.overrides.extend(overrides)
        self.backend_id.extend(backend_id)
        self.exitcode.extend(exitcode)
        if any(reason):
            self.reason.update((start + n, r) for n, r in enumerate(reason) if r)
        self.submit_counter.extend(counter)
        self.t_submitted.extend(t_submitted)
        self.t_running.extend(t_running)
        self.t_final.extend(t_final)
        if any(retry_at):
            self.retry_at.update((start + n, due) for n, due in enumerate(retry_at) if due)

    def get_status(self, index: int) -> Status:
        return Status.from_code(self.status[index])

    def set_status(self, index: int, status: Status) -> Status:
        """Record ``status`` for subjob ``index`` and return the previous one."""
        old = self.status[index]
        self.status[index] = status.code
        self.counts[old] -= 1
        self.counts[status.code] += 1
        return Status.from_code(old)

    def indices(self, statuses: frozenset[Status] | set[Status]) -> list[int]:
        codes = bytes(s.code for s in statuses)
        return [i for i, code in enumerate(self.status) if code in codes]

    def all_final(self) -> bool:
        return sum(self.counts[s.code] for s in FINAL) == len(self.status)

    def snapshot(self) -> SubjobColumns:
        """A copy of the columns readers need (see :class:`SubjobColumns`)."""
        return SubjobColumns(bytes(self.status), list(self.backend_id), dict(self.reason),
                             array("H", self.submit_counter), array("d", self.t_running),
                             array("d", self.t_final))

    def row(self, index: int
            ) -> tuple[int, str | None, int | None, str | None, int, float, float, float, float]:
        """Subjob ``index`` as the repository stores it (all but its overrides)."""
        return (self.status[index], self.backend_id[index], self.exitcode[index],
                self.reason.get(index), self.submit_counter[index], self.t_submitted[index],
                self.t_running[index], self.t_final[index], self.retry_at.get(index, 0.0))
