"""Job states, the one transition table, and how a master's status follows from its subjobs.

The states are Ganga's. A job moves::

    new ─▶ submitting ─▶ submitted ─▶ running ─▶ completing ─▶ completed
                │            │           │            │
                └────────────┴───────────┴────────────┴─────▶ failed | killed | unknown

and ``removed`` ends any of them. Final jobs may be resubmitted (back to ``submitting``), and a
job whose submission failed before reaching a backend goes back to ``new``.

``held`` is the waiting state of the credential gate: a job whose credentials are short goes
``submitting ─▶ held`` (its ``reason`` says what to renew) and back to ``submitting`` by itself
once they are valid; it may be killed or removed while it waits. A batch system may hold a job
too (HTCondor's Held, with its HoldReason): ``submitted | running ─▶ held`` and, once released,
on again. The two are told apart by the backend id: a job held at the gate has none.

A master job's status is derived from its subjobs with Ganga's priority: the first of
``held, submitting, submitted, running, completing, failed, killed, completed`` that any subjob
has (``held`` first, so a master waiting for a credential says so).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from ._exceptions import JobStateError

__all__ = ["Status", "FINAL", "ACTIVE", "check_transition", "derive_master_status"]


class Status(enum.StrEnum):
    """The status of a job or subjob: a string equal to its Ganga name, as Ganga's statuses are
    (``job.status == "completed"``, ``status in ("failed", "killed")``, a dict key interchangeable
    with the name). ``str``, ``repr``, formatting and JSON give the name."""

    NEW = "new"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    RUNNING = "running"
    COMPLETING = "completing"
    COMPLETED = "completed"
    FAILED = "failed"
    KILLED = "killed"
    UNKNOWN = "unknown"
    REMOVED = "removed"
    HELD = "held"
    """Waiting at the credential gate (a new member goes last: codes are stored)."""

    code: int
    """A small integer for compact storage (stable across versions)."""

    # The string's own hash (a C slot, cached in the string), consistent with equality to the
    # name; Enum's is a Python-level hash of the member's name.
    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return repr(self.value)

    @classmethod
    def from_code(cls, code: int) -> Status:
        return _BY_CODE[code]

    @classmethod
    def parse(cls, value: str | Status) -> Status:
        """Accept a Status or its name; a wrong name is an error listing the valid ones."""
        if isinstance(value, Status):
            return value
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise JobStateError(f"unknown status {value!r}; valid statuses: {names}") from None


for _code, _status in enumerate(Status):
    _status.code = _code
_BY_CODE = {status.code: status for status in Status}
del _code, _status

FINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.KILLED, Status.REMOVED})
"""Statuses that end a job's life on its backend."""

ACTIVE = frozenset({Status.SUBMITTING, Status.SUBMITTED, Status.RUNNING, Status.COMPLETING})
"""Statuses in which the engine is still working on the job."""

S = Status
_TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.NEW: frozenset({S.SUBMITTING, S.FAILED, S.KILLED, S.REMOVED}),
    S.SUBMITTING: frozenset({S.NEW, S.SUBMITTED, S.RUNNING, S.FAILED, S.KILLED, S.UNKNOWN, S.HELD}),
    S.HELD: frozenset({S.SUBMITTING, S.SUBMITTED, S.RUNNING, S.COMPLETING, S.FAILED, S.KILLED,
                       S.UNKNOWN}),
    S.SUBMITTED: frozenset({S.RUNNING, S.COMPLETING, S.COMPLETED, S.FAILED, S.KILLED, S.UNKNOWN,
                            S.HELD}),
    S.RUNNING: frozenset({S.COMPLETING, S.COMPLETED, S.FAILED, S.KILLED, S.UNKNOWN, S.HELD}),
    S.COMPLETING: frozenset({S.COMPLETED, S.FAILED, S.KILLED, S.UNKNOWN}),
    S.COMPLETED: frozenset({S.SUBMITTING, S.FAILED}),
    S.FAILED: frozenset({S.SUBMITTING, S.COMPLETED}),
    S.KILLED: frozenset({S.SUBMITTING, S.FAILED, S.COMPLETED}),
    S.UNKNOWN: frozenset({S.SUBMITTING, S.SUBMITTED, S.RUNNING, S.COMPLETING, S.COMPLETED,
                          S.FAILED, S.KILLED}),
    S.REMOVED: frozenset(),
}
for _targets in list(_TRANSITIONS):
    if _targets is not S.REMOVED:
        _TRANSITIONS[_targets] = _TRANSITIONS[_targets] | {S.REMOVED}
del _targets


def check_transition(current: Status, new: Status, *, what: str = "job") -> None:
    """Raise JobStateError unless the table allows ``current -> new``."""
    if new is current or new in _TRANSITIONS[current]:
        return
    allowed = ", ".join(sorted(s.value for s in _TRANSITIONS[current])) or "nothing"
    raise JobStateError(f"{what} cannot go from {current} to {new} (from {current}: {allowed})")


def allowed(current: Status, new: Status) -> bool:
    """True when the table allows ``current -> new`` (or they are equal)."""
    return new is current or new in _TRANSITIONS[current]


_PRIORITY = (S.HELD, S.SUBMITTING, S.SUBMITTED, S.RUNNING, S.COMPLETING, S.FAILED, S.KILLED, S.COMPLETED,
             S.UNKNOWN, S.NEW, S.REMOVED)


def derive_master_status(counts: Iterable[int]) -> Status:
    """The master's status from per-status subjob counts indexed by ``Status.code``.

    Ganga's priority decides (after ``held``, which comes first so that a master waiting for a
    credential shows it): any subjob submitting makes the master submitting, then
    submitted, running, completing, failed, killed, completed. A master with no subjobs is new.
    """
    by_code = list(counts)
    for status in _PRIORITY:
        if by_code[status.code]:
            return status
    return S.NEW
