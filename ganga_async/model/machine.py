"""The job state machine: the only code that changes a job's status.

Each rule takes a job's :class:`~ganga_async.model.record.JobRecord` (and a subjob index, or
``None`` for the job itself), a piece of news (accepted, refused, submitted, a backend's view,
kill, resubmit, force) and the time, changes the record, and notes in :class:`Changes` what
the world must hear of it: the rows to persist and the transitions to publish (each with the
master's status derived again from its subjobs). The rules do no I/O and need no event loop;
the pipeline's recorder writes, publishes and wakes waiters from the :class:`Changes`.

The transition table is :mod:`ganga_async.states`; a change it does not allow is ignored
(news that came late), unless forced.
"""

from __future__ import annotations

from ..backends.base import BackendStatus
from ..states import ACTIVE, FINAL, Status, allowed, derive_master_status
from .record import JobRecord

__all__ = ["ON_BACKEND", "Changes", "Transition", "set_status", "accept", "refuse", "apply_news",
           "never_received", "finish", "reset_for_submission", "resume_held", "remove", "is_final",
           "targets", "on_backend", "held_by_backend"]

ON_BACKEND = ACTIVE | {Status.UNKNOWN}
"""Statuses in which a backend may still hold a (sub)job: to monitor again, kill or resume."""

_MOVING = (Status.SUBMITTED, Status.RUNNING, Status.UNKNOWN, Status.HELD)
"""Backend news that leaves a (sub)job with its backend."""


def held_by_backend(record: JobRecord, index: int | None) -> bool:
    """Whether the (sub)job is ``held`` by its batch system (it has a backend id), not at the
    credential gate (where it has none)."""
    if record.status_of(index) is not Status.HELD:
        return False
    if index is None or record.table is None:
        return bool(record.backend_id)
    return bool(record.table.backend_id[index])


def on_backend(record: JobRecord, index: int | None) -> bool:
    """Whether a backend may hold the (sub)job: to monitor again, kill or release."""
    return record.status_of(index) in ON_BACKEND or held_by_backend(record, index)


class Transition:
    """One status change of a job (``index`` None) or of one of its subjobs."""

    __slots__ = ("record", "index", "old", "new", "reason")

    def __init__(self, record: JobRecord, index: int | None, old: Status, new: Status,
                 reason: str | None) -> None:
        self.record = record
        self.index = index
        self.old = old
        self.new = new
        self.reason = reason

    def __repr__(self) -> str:
        return f"Transition({self.record.key(self.index)}: {self.old} -> {self.new})"


class Changes:
    """What the rules decided: ``rows`` to persist as the records now hold them (a job's own
    row for index None) and ``transitions`` to publish, in order."""

    __slots__ = ("rows", "transitions")

    def __init__(self) -> None:
        self.rows: list[tuple[JobRecord, int | None]] = []
        self.transitions: list[Transition] = []

    def __bool__(self) -> bool:
        return bool(self.rows or self.transitions)


def set_status(changes: Changes, record: JobRecord, index: int | None, status: Status, now: float,
               *, exitcode: int | None = None, reason: str | None = None,
               backend_id: str | None = None, t: float | None = None, force: bool = False) -> bool:
    """Move the (sub)job to ``status`` if the table allows it (or ``force``), recording the
    other fields given; False when the change was refused. The same status records the other
    fields (a backend id learnt late) without a transition."""
    old = record.status_of(index)
    if not force and not allowed(old, status):
        return False
    t = t or now
    if index is None:
        record.status = status
        if old is not status:
            record.times[str(status)] = t
        if backend_id is not None:
            record.backend_id = backend_id
        if exitcode is not None:
            record.exitcode = exitcode
        if reason is not None or status in FINAL:
            record.reason = reason
    else:
        table = record.table
        assert table is not None
        table.set_status(index, status)
        if backend_id is not None:
            table.backend_id[index] = backend_id
        if exitcode is not None:
            table.exitcode[index] = exitcode
        if reason is not None:
            table.reason[index] = reason
        elif status in FINAL and status is not Status.FAILED:
            table.reason.pop(index, None)
        if old is not status:
            if status is Status.SUBMITTED:
                table.t_submitted[index] = t
            elif status is Status.RUNNING:
                table.t_running[index] = t
            elif status in FINAL:
                table.t_final[index] = t
    changes.rows.append((record, index))
    if old is not status:
        changes.transitions.append(Transition(record, index, old, status, reason))
    if index is not None:
        _derive_master(changes, record, now)
    return True


def _derive_master(changes: Changes, record: JobRecord, now: float) -> None:
    """Bring a master's status in line with its subjobs' counts (Ganga's priority)."""
    assert record.table is not None
    status = derive_master_status(record.table.counts)
    if status is not record.status:
        old = record.status
        record.status = status
        record.times[str(status)] = now
        changes.rows.append((record, None))
        changes.transitions.append(Transition(record, None, old, status, None))


def accept(changes: Changes, record: JobRecord, now: float) -> None:
    """A new job passed validation and is to be submitted: ``new -> submitting``, one more
    submission counted."""
    record.status = Status.SUBMITTING
    record.submit_counter += 1
    record.times["submitting"] = now
    changes.rows.append((record, None))
    changes.transitions.append(Transition(record, None, Status.NEW, Status.SUBMITTING, None))


def refuse(changes: Changes, record: JobRecord, reason: str) -> bool:
    """A submission failed before reaching a backend: the job goes back to ``new`` as if it
    had never been submitted (its subjobs forgotten). False when it was not submitting."""
    if record.status is not Status.SUBMITTING:
        return False
    record.status = Status.NEW
    record.submit_counter -= 1
    record.times.pop("submitting", None)
    record.table = None
    changes.rows.append((record, None))
    changes.transitions.append(Transition(record, None, Status.SUBMITTING, Status.NEW, reason))
    return True


def _catch_up(changes: Changes, record: JobRecord, index: int | None, news: BackendStatus,
              now: float) -> None:
    """Walk the states a (sub)job went through unseen, so the table accepts the news: a
    backend reporting on it has it (an engine that died before writing ``submitted`` left it
    ``submitting``), and one reporting a start has run it (a short process starts and ends
    between two updates)."""
    if record.status_of(index) is Status.SUBMITTING:
        set_status(changes, record, index, Status.SUBMITTED, now, backend_id=news.native_id)
    if (news.started is not None and news.status not in (Status.SUBMITTED, Status.RUNNING)
            and record.status_of(index) is Status.SUBMITTED):
        set_status(changes, record, index, Status.RUNNING, now, t=news.started)


def apply_news(changes: Changes, record: JobRecord, index: int | None, news: BackendStatus,
               now: float) -> BackendStatus | None:
    """A backend's view of a (sub)job it runs. Returns the end to finish it with (see
    :func:`finish`) once the backend is done with it, None while it is still there.

    An end is not applied at once: a completed (sub)job waits in ``completing`` for its
    finalisation. A backend with no record of a (sub)job it was given lost it: failed.
    """
    new = news.status
    if new is Status.NEW:
        new, news = Status.FAILED, BackendStatus(Status.FAILED,
                                                 reason="the backend has no record of this job")
    else:
        _catch_up(changes, record, index, news, now)
    if new in _MOVING:
        if new is Status.HELD:
            set_status(changes, record, index, new, now, backend_id=news.native_id, reason=news.reason)
            return None
        if record.status_of(index) is Status.HELD:  # released: the hold's reason is over
            _clear_reason(record, index)
        set_status(changes, record, index, new, now, backend_id=news.native_id, t=news.started)
        return None
    if news.native_id is not None:
        set_status(changes, record, index, record.status_of(index), now, backend_id=news.native_id)
    if new is Status.COMPLETED:
        set_status(changes, record, index, Status.COMPLETING, now, t=news.started)
    return news


def _clear_reason(record: JobRecord, index: int | None) -> None:
    if index is None:
        record.reason = None
    else:
        assert record.table is not None
        record.table.reason.pop(index, None)


def never_received(changes: Changes, record: JobRecord, index: int | None, now: float) -> bool:
    """The backend never received a (sub)job an earlier engine left with it (that engine died
    between recording the submission and handing it over): it goes back to ``submitting`` to be
    submitted again, which cannot run it twice. False when it is no longer with its backend
    (killed or forced meanwhile)."""
    current = record.status_of(index)
    if not on_backend(record, index):
        return False
    if current is not Status.SUBMITTING:
        set_status(changes, record, index, Status.SUBMITTING, now, force=True)
    return True


def finish(changes: Changes, record: JobRecord, index: int | None, end: BackendStatus,
           now: float) -> None:
    """Put a (sub)job its backend is done with into its final status."""
    set_status(changes, record, index, end.status, now, exitcode=end.exitcode, reason=end.reason,
               t=end.ended)


def reset_for_submission(changes: Changes, record: JobRecord, index: int | None, now: float) -> None:
    """Make a final (sub)job ready to be submitted again: ``submitting``, one more submission
    counted, its exit code, reason and timestamps of the earlier run cleared."""
    if index is None:
        old = record.status
        record.status = Status.SUBMITTING
        record.times["submitting"] = now
        record.submit_counter += 1
        record.exitcode = None
        record.reason = None
        changes.rows.append((record, None))
        changes.transitions.append(Transition(record, None, old, Status.SUBMITTING, None))
        return
    table = record.table
    assert table is not None
    old = table.set_status(index, Status.SUBMITTING)
    table.submit_counter[index] += 1
    table.exitcode[index] = None
    table.reason.pop(index, None)
    table.t_submitted[index] = table.t_running[index] = table.t_final[index] = 0.0
    changes.rows.append((record, index))
    changes.transitions.append(Transition(record, index, old, Status.SUBMITTING, None))
    _derive_master(changes, record, now)


def resume_held(changes: Changes, record: JobRecord, index: int | None, now: float) -> bool:
    """A (sub)job held at the credential gate may go on: back to ``submitting``, its reason
    cleared. False when it is no longer held (killed meanwhile)."""
    if record.status_of(index) is not Status.HELD or held_by_backend(record, index):
        return False
    _clear_reason(record, index)
    return set_status(changes, record, index, Status.SUBMITTING, now)


def remove(changes: Changes, record: JobRecord) -> None:
    """The job is deleted: ``removed`` whatever it was (its rows are gone, nothing to write)."""
    old = record.status
    record.status = Status.REMOVED
    changes.transitions.append(Transition(record, None, old, Status.REMOVED, None))


def is_final(record: JobRecord, index: int | None = None) -> bool:
    """Whether the (sub)job, or a job and every one of its subjobs, is final."""
    if index is not None:
        return record.status_of(index) in FINAL
    if record.split:
        assert record.table is not None
        return record.table.all_final() and record.status in FINAL
    return record.status in FINAL


def targets(record: JobRecord, index: int | None = None) -> list[int | None]:
    """What an operation on the job (index None) or on subjob ``index`` acts on: that subjob,
    every subjob of a master, or the unsplit job itself."""
    if index is not None:
        return [index]
    if record.split:
        assert record.table is not None
        return list(range(len(record.table)))
    return [None]
