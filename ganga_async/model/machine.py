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

import random
from collections.abc import Callable

from ..backends.base import BackendStatus
from ..states import ACTIVE, FINAL, Status, allowed, derive_master_status
from .record import JobRecord
from .retry import Attempt, failure_kind

__all__ = ["ON_BACKEND", "Changes", "Transition", "Moves", "set_status", "accept", "refuse",
           "apply_news", "move_many",
           "never_received", "finish", "reset_for_submission", "resume_held", "remove", "is_final",
           "targets", "on_backend", "held_by_backend", "postprocessed", "retry_due", "attempt_of",
           "waiting", "ready", "derive"]

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


class Moves:
    """Many subjobs of one master that went from one status to another at once, by one sweep's
    news (see :func:`move_many`): one entry instead of a :class:`Transition` each, expanded
    into events only when someone takes subjob events."""

    __slots__ = ("record", "indices", "old", "new")

    def __init__(self, record: JobRecord, indices: list[int], old: Status, new: Status) -> None:
        self.record = record
        self.indices = indices
        self.old = old
        self.new = new

    def __repr__(self) -> str:
        return f"Moves({self.record.id}: {len(self.indices)} {self.old} -> {self.new})"


class Changes:
    """What the rules decided: ``rows`` to persist as the records now hold them (a job's own
    row for index None), ``transitions`` to publish, in order, and the masters whose
    postprocessors are to run now (``postprocess``, see :func:`postprocessed`). ``moved``
    holds the :class:`Moves` (also in ``transitions``, in their place): their rows changed
    in status and timestamps only."""

    __slots__ = ("rows", "transitions", "moved", "postprocess", "attempts", "retries")

    def __init__(self) -> None:
        self.rows: list[tuple[JobRecord, int | None]] = []
        self.transitions: list[Transition | Moves] = []
        self.moved: list[Moves] = []
        self.postprocess: list[JobRecord] = []
        self.attempts: list[tuple[JobRecord, int | None, Attempt]] = []
        """Attempts that ended, to keep (a retry or a resubmission follows them)."""
        self.retries: list[tuple[JobRecord, int | None, float]] = []
        """(Sub)jobs to submit again once due (a time), by the retry policy."""

    def __bool__(self) -> bool:
        return bool(self.rows or self.transitions)


_BULK = {Status.SUBMITTED: "t_submitted", Status.RUNNING: "t_running"}
"""The news :func:`move_many` applies, and the timestamp each one records."""
_PLAIN = {new: bytes(old.code for old in Status if old not in (Status.SUBMITTING, Status.HELD)
                     and old is not new and allowed(old, new)) for new in _BULK}
"""For each of those, the status codes it follows with nothing more than the transition."""


def move_many(changes: Changes, record: JobRecord, new: Status, indices: list[int],
              news: list[BackendStatus], now: float) -> list[int]:
    """A sweep's news that many subjobs of ``record`` are now ``new`` (``submitted`` or
    ``running``, without a new backend id; ``news[n]`` is that of ``indices[n]``), applied at
    once: what :func:`apply_news` does to each, checked once for each status they come from.
    A subjob already ``new`` is left as it is. Returns the positions in ``indices`` that take
    more than a plain transition (a catch-up from ``submitting``, a hold released, a change the
    table refuses), for :func:`apply_news` to do one at a time."""
    table = record.table
    assert table is not None and new in _BULK
    codes, code, column, plain = table.status, new.code, getattr(table, _BULK[new]), _PLAIN[new]
    by_old: dict[int, list[int]] = {}
    rest: list[int] = []
    for n, index in enumerate(indices):
        old = codes[index]
        if old == code:
            continue
        if old not in plain:
            rest.append(n)
            continue
        codes[index] = code
        column[index] = news[n].started or now
        moved = by_old.get(old)
        if moved is None:
            moved = by_old[old] = []
        moved.append(index)
    counts, waiting = table.counts, table.retry_at
    for old, moved in by_old.items():
        counts[old] -= len(moved)
        counts[code] += len(moved)
        if waiting:
            for index in moved:
                waiting.pop(index, None)
        step = Moves(record, moved, Status.from_code(old), new)
        changes.moved.append(step)
        changes.transitions.append(step)
    if by_old:
        _derive_master(changes, record, now)
    return rest


def set_status(changes: Changes, record: JobRecord, index: int | None, status: Status, now: float,
               *, exitcode: int | None = None, reason: str | None = None,
               backend_id: str | None = None, t: float | None = None, force: bool = False,
               derive: bool = True) -> bool:
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
        if old is not status:
            record.retry_at = 0.0
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
            table.retry_at.pop(index, None)
            if status is Status.SUBMITTED:
                table.t_submitted[index] = t
            elif status is Status.RUNNING:
                table.t_running[index] = t
            elif status in FINAL:
                table.t_final[index] = t
    changes.rows.append((record, index))
    if old is not status:
        changes.transitions.append(Transition(record, index, old, status, reason))
    if index is not None and derive:
        _derive_master(changes, record, now)
    return True


def _derive_master(changes: Changes, record: JobRecord, now: float) -> None:
    """Bring a master's status in line with its subjobs' counts (Ganga's priority). A master
    with postprocessors (``hold_final``) waits in ``completing`` for them once its subjobs
    are final, and keeps the final status they gave it until a subjob is active again."""
    assert record.table is not None
    status = derive_master_status(record.table.counts)
    if record.hold_final and status in FINAL:
        if record.status in FINAL and not record.postprocessing:
            return
        if not record.postprocessing:
            record.postprocessing = True
            changes.postprocess.append(record)
        status = Status.COMPLETING
    elif record.postprocessing and status not in FINAL:
        record.postprocessing = False  # a subjob is active again (resubmitted): run them later
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
        set_status(changes, record, index, Status.RUNNING, now, t=news.started,
                   backend_id=news.native_id)


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
    if news.native_id is not None and news.native_id != _backend_id(record, index):
        set_status(changes, record, index, record.status_of(index), now, backend_id=news.native_id)
    if new is Status.COMPLETED:
        set_status(changes, record, index, Status.COMPLETING, now, t=news.started)
    return news


def _backend_id(record: JobRecord, index: int | None) -> str | None:
    if index is None or record.table is None:
        return record.backend_id
    return record.table.backend_id[index]


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
           now: float, *, checker: bool = False,
           jitter: Callable[[], float] = random.random) -> float | None:
    """Put a (sub)job its backend is done with into its final status (``checker``: a checker
    failed it). A failure the job's retry policy takes is kept as an attempt and the (sub)job
    goes back to ``submitting`` at once, due after the policy's backoff: returns that delay
    (None when it is not retried)."""
    policy = record.retry
    kind = failure_kind(end.status, end.exitcode, end.reason, checker=checker)
    attempt = _submit_counter(record, index)
    retried = (policy is not None and kind in policy.on and attempt < policy.max_attempts
               and allowed(record.status_of(index), end.status) and not _gave_up(record, index))
    # A failure to retry does not reach the master: it would end it for a moment.
    set_status(changes, record, index, end.status, now, exitcode=end.exitcode, reason=end.reason,
               t=end.ended, derive=not retried)
    if not retried:
        return None
    assert policy is not None
    delay = policy.delay(attempt, jitter())
    reset_for_submission(changes, record, index, now, retry_at=now + delay,
                         reason=f"retrying ({kind}): attempt {attempt + 1} of "
                                f"{policy.max_attempts} in {delay:.1f} s")
    return delay


def _submit_counter(record: JobRecord, index: int | None) -> int:
    return record.submit_counter if index is None or record.table is None else (
        record.table.submit_counter[index])


def _gave_up(record: JobRecord, index: int | None) -> bool:
    """Whether ``give_up_fraction`` of a master's subjobs have failed for good (a subjob
    waiting for its retry is ``submitting``, not failed)."""
    table = record.table
    if index is None or table is None or record.retry is None:
        return False
    return table.counts[Status.FAILED.code] >= record.retry.give_up_fraction * len(table)


def attempt_of(record: JobRecord, index: int | None) -> Attempt:
    """The current attempt of a (sub)job, as its record holds it now."""
    if index is None or record.table is None:
        times = record.times
        return Attempt(record.submit_counter, str(record.status), record.backend_id,
                       record.exitcode, record.reason, times.get("submitted", 0.0),
                       times.get("running", 0.0), times.get(str(record.status), 0.0)
                       if record.status in FINAL else 0.0)
    table = record.table
    return Attempt(table.submit_counter[index], str(table.get_status(index)),
                   table.backend_id[index], table.exitcode[index], table.reason.get(index),
                   table.t_submitted[index], table.t_running[index], table.t_final[index])


def reset_for_submission(changes: Changes, record: JobRecord, index: int | None, now: float, *,
                         retry_at: float = 0.0, reason: str | None = None) -> None:
    """Make a final (sub)job ready to be submitted again: ``submitting``, one more submission
    counted, its exit code, reason and timestamps of the earlier run cleared (that run kept as
    an attempt); the job (a subjob's master) is stamped ``resubmitted``, as Ganga's. With
    ``retry_at`` it waits until then (a retry's backoff)."""
    record.times["resubmitted"] = now
    if record.status_of(index) in FINAL and _submit_counter(record, index) > 0:
        ended = attempt_of(record, index)
        record.attempts.setdefault(index, []).append(ended)
        changes.attempts.append((record, index, ended))
    if retry_at:
        changes.retries.append((record, index, retry_at))
    if index is None:
        old = record.status
        record.status = Status.SUBMITTING
        record.times["submitting"] = now
        record.submit_counter += 1
        record.exitcode = None
        record.reason = None
        record.retry_at = retry_at
        changes.rows.append((record, None))
        changes.transitions.append(Transition(record, None, old, Status.SUBMITTING, reason))
        return
    table = record.table
    assert table is not None
    old = table.set_status(index, Status.SUBMITTING)
    table.submit_counter[index] += 1
    table.exitcode[index] = None
    table.reason.pop(index, None)
    table.t_submitted[index] = table.t_running[index] = table.t_final[index] = 0.0
    if retry_at:
        table.retry_at[index] = retry_at
    changes.rows.append((record, index))
    changes.transitions.append(Transition(record, index, old, Status.SUBMITTING, reason))
    _derive_master(changes, record, now)


def waiting(record: JobRecord, index: int | None) -> bool:
    """Whether the (sub)job waits in ``submitting`` for a retry that is not due yet."""
    if record.status_of(index) is not Status.SUBMITTING:
        return False
    if index is None:
        return bool(record.retry_at)
    assert record.table is not None
    return index in record.table.retry_at


def ready(record: JobRecord, indices: list[int | None]) -> list[int | None]:
    """Those of the (sub)jobs that are ``submitting`` and not waiting for a retry: what the
    submit stage hands to their backend (a chunk's worth at once)."""
    table = record.table
    if table is None or None in indices:
        return [i for i in indices
                if record.status_of(i) is Status.SUBMITTING and not waiting(record, i)]
    codes, code, due = table.status, Status.SUBMITTING.code, table.retry_at
    return [i for i in indices if codes[i] == code and i not in due]  # type: ignore[index]


def derive(changes: Changes, record: JobRecord, now: float) -> None:
    """Bring a master's status in line with its subjobs, once after many changes made with
    ``set_status(..., derive=False)``."""
    if record.table is not None:
        _derive_master(changes, record, now)


def retry_due(changes: Changes, record: JobRecord, index: int | None) -> bool:
    """A (sub)job waiting for a retry is due: it no longer waits (and is submitted). False
    when it is not waiting any more (killed, removed or submitted meanwhile)."""
    if record.status_of(index) is not Status.SUBMITTING:
        return False
    if index is None:
        if not record.retry_at:
            return False
        record.retry_at = 0.0
    else:
        assert record.table is not None
        if record.table.retry_at.pop(index, None) is None:
            return False
    changes.rows.append((record, index))
    return True


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


def postprocessed(changes: Changes, record: JobRecord, reason: str | None, now: float) -> bool:
    """A master's postprocessors ran: it takes the status its subjobs give it, or ``failed``
    with ``reason`` when one of them failed it. False when it no longer waits for them (a
    subjob was resubmitted meanwhile, or the job removed)."""
    if not record.postprocessing or record.table is None or record.status is not Status.COMPLETING:
        record.postprocessing = False  # forced, removed or active again meanwhile
        return False
    record.postprocessing = False
    status = derive_master_status(record.table.counts)
    if status not in FINAL:
        return False
    if reason is not None:
        status = Status.FAILED
    set_status(changes, record, None, status, now, reason=reason, force=True)
    return True
