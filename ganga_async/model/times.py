"""A job's timestamps as Ganga keeps them: ``job.time``.

The state machine stamps a job's record with the time it entered each status (a backend's own
start and end times when it reports them) and a master's subjob table with each subjob's
submitted, running and final times. :class:`JobTimes` reads those under Ganga's names:

``new``, ``submitting``, ``submitted``, ``running``, ``completing``, ``held`` and
``resubmitted`` as recorded; ``backend_running`` (when the backend started it), ``final``
(when it became completed, failed or killed) and ``backend_final`` (when the backend ended it;
not for a killed job). The status names ``completed``, ``failed`` and ``killed`` stay too. A
master's ``submitted`` and ``backend_running`` are its subjobs' earliest, its ``final`` and
``backend_final`` their latest, as Ganga derives them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from ..states import FINAL, Status
from .record import JobRecord
from .subjobs import SubjobTable

__all__ = ["JobTimes"]

_ENDED = (Status.COMPLETED, Status.FAILED)
"""Final statuses a backend reports an end time for (a killed job has none)."""


def _stamps(record: JobRecord, index: int | None) -> dict[str, float]:
    """The stamps of the job (index None) or of subjob ``index``, under Ganga's names."""
    if index is None:
        stamps = dict(record.times)
        status = record.status
        if "running" in stamps:
            stamps["backend_running"] = stamps["running"]
        if status in FINAL and str(status) in stamps:
            stamps["final"] = stamps[str(status)]
            if status in _ENDED:
                stamps["backend_final"] = stamps[str(status)]
        if record.table is not None and len(record.table):
            _from_subjobs(stamps, record)
        return stamps
    table = record.table
    assert table is not None
    stamps = {}
    split_at = record.times.get("submitting")  # subjobs are made when their master is submitted
    if split_at:
        stamps["new"] = stamps["submitting"] = split_at
    if table.t_submitted[index]:
        stamps["submitted"] = table.t_submitted[index]
    if table.t_running[index]:
        stamps["running"] = stamps["backend_running"] = table.t_running[index]
    status = table.get_status(index)
    if table.t_final[index] and status in FINAL:
        stamps[str(status)] = stamps["final"] = table.t_final[index]
        if status in _ENDED:
            stamps["backend_final"] = table.t_final[index]
    return stamps


def _from_subjobs(stamps: dict[str, float], record: JobRecord) -> None:
    """A master's times from its subjobs' (Ganga's rule): earliest submitted and start, latest
    end (once every subjob has ended). Built-in min/max over the compact arrays: a few
    milliseconds at 10^5 subjobs."""
    table = record.table
    assert table is not None
    for key, column in (("submitted", table.t_submitted), ("backend_running", table.t_running)):
        first = min(filter(None, column), default=0.0)
        if first:
            stamps[key] = first
    if record.status in FINAL:
        last = max(table.t_final, default=0.0)
        if last:
            stamps["final"] = last
        killed = table.counts[Status.KILLED.code]
        ended = max((table.t_final[i] for i in table.indices({*_ENDED})), default=0.0) if killed \
            else last
        if ended:
            stamps["backend_final"] = ended


def _all_ended(table: SubjobTable) -> bool:
    """Every subjob ended at its backend (completed or failed) with a start and an end time."""
    ended = sum(table.counts[s.code] for s in _ENDED)
    return ended == len(table) and 0.0 not in table.t_running and 0.0 not in table.t_final


class JobTimes(Mapping[str, datetime]):
    """When a job entered each status, as Ganga's ``job.time``: ``job.time.timestamps``
    (a dict of datetimes, local time), ``job.time["submitted"]``, ``job.time.submitted()``
    (None when not yet), and the durations ``submissiontime()``, ``waittime()`` and
    ``runtime()`` (``timedelta``, None until both ends are known); ``details(i)``."""

    def __init__(self, record: JobRecord, index: int | None = None, backend: str = "") -> None:
        self._record = record
        self._index = index
        self._backend = backend
        self._stamps = _stamps(record, index)

    @property
    def timestamps(self) -> dict[str, datetime]:
        return {k: datetime.fromtimestamp(v) for k, v in self._stamps.items()}

    def __getitem__(self, key: str) -> datetime:
        return datetime.fromtimestamp(self._stamps[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._stamps)

    def __len__(self) -> int:
        return len(self._stamps)

    def __getattr__(self, name: str) -> Any:
        if name in _NAMES:
            return lambda format=None: self._statetime(name, format)  # noqa: A002 (Ganga's name)
        raise AttributeError(name)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_NAMES})

    def _statetime(self, name: str, format: str | None) -> datetime | str | None:  # noqa: A002
        stamp = self.get(name)
        return stamp.strftime(format) if stamp is not None and format else stamp

    def _split(self) -> bool:
        return self._index is None and self._record.split

    def duration(self, start: str, end: str) -> timedelta | None:
        """The time from stamp ``start`` to stamp ``end``; None unless both are recorded."""
        if start in self._stamps and end in self._stamps:
            return timedelta(seconds=self._stamps[end] - self._stamps[start])
        return None

    def submissiontime(self) -> timedelta | None:
        """From ``submitting`` to ``submitted`` (a master: to its last subjob's ``submitted``)."""
        table = self._record.table
        if self._split() and table is not None:
            if "submitting" not in self._stamps or 0.0 in table.t_submitted:
                return None
            return timedelta(seconds=max(table.t_submitted) - self._stamps["submitting"])
        return self.duration("submitting", "submitted")

    def waittime(self) -> timedelta | None:
        """From ``submitted`` to ``backend_running`` (a master: from its first subjob's
        ``submitted`` to its last subjob's start)."""
        table = self._record.table
        if self._split() and table is not None:
            if 0.0 in table.t_submitted or 0.0 in table.t_running:
                return None
            return timedelta(seconds=max(table.t_running) - min(table.t_submitted))
        return self.duration("submitted", "backend_running")

    def runtime(self) -> timedelta | None:
        """From ``backend_running`` to ``backend_final`` (a master: its subjobs' summed)."""
        table = self._record.table
        if self._split() and table is not None:
            if not _all_ended(table):
                return None
            return timedelta(seconds=math.fsum(table.t_final) - math.fsum(table.t_running))
        return self.duration("backend_running", "backend_final")

    def details(self, subjob: int | None = None) -> dict[str, Any] | None:
        """What is known of the (sub)job's run: backend, backend id, exit code and its
        stamps. A master gives None unless ``subjob`` names one of its subjobs (as Ganga)."""
        record = self._record
        if self._split():
            if subjob is None:
                return None
            assert record.table is not None
            if not 0 <= subjob < len(record.table):
                return None
            return JobTimes(record, subjob, self._backend).details()
        table, i = record.table, self._index
        backend_id = record.backend_id if i is None or table is None else table.backend_id[i]
        exitcode = record.exitcode if i is None or table is None else table.exitcode[i]
        return {"backend": self._backend, "backend_id": backend_id, "exitcode": exitcode,
                **self.timestamps}

    def display(self, format: str = "%Y/%m/%d %H:%M:%S") -> str:  # noqa: A002 (Ganga's name)
        """The stamps as a table, oldest first."""
        rows = sorted(self._stamps.items(), key=lambda kv: (kv[1], kv[0]))
        width = len(datetime.now().strftime(format))
        lines = ["Time".rjust(width) + "   Status", "- " * 21]
        lines += [f"{datetime.fromtimestamp(t).strftime(format).rjust(width)} - {k}" for k, t in rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"JobTimes({ {k: v.isoformat(' ', 'seconds') for k, v in self.timestamps.items()} })"


_NAMES = frozenset({"new", "submitting", "submitted", "running", "completing", "held",
                    "resubmitted", "backend_running", "backend_final", "final", "completed",
                    "failed", "killed", "unknown"})
"""The stamps with a method of their own: ``job.time.submitted()``."""
