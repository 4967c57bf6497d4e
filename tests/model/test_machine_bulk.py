"""The state machine's bulk rule (``move_many``, a sweep's news to many subjobs at once): it
leaves every subjob, the master and the transitions exactly as ``apply_news`` one subjob at a
time does, whatever status each subjob came from."""

from __future__ import annotations

import pytest

from ganga_async.backends.base import BackendStatus
from ganga_async.model import machine
from ganga_async.model.record import JobRecord
from ganga_async.model.subjobs import SubjobTable
from ganga_async.states import Status, derive_master_status

NOW = 1_000.0


def master() -> JobRecord:
    """A master with two subjobs in every status but removed, one of each pair waiting for a
    retry or held with a reason, so each kind of old status meets the news."""
    table = SubjobTable()
    for status in Status:
        if status is Status.REMOVED:
            continue
        table.append(status, None, backend_id="b" if status is Status.HELD else None,
                     reason="held by the batch system" if status is Status.HELD else None,
                     retry_at=5.0 if status is Status.SUBMITTING else 0.0)
        table.append(status, None)
    return JobRecord(7, status=derive_master_status(table.counts), table=table)


def state(record: JobRecord) -> tuple[object, ...]:
    table = record.table
    assert table is not None
    return (record.status, bytes(table.status), list(table.counts), list(table.t_submitted),
            list(table.t_running), dict(table.retry_at), dict(table.reason), list(table.backend_id))


def per_subjob(changes: machine.Changes) -> list[tuple[int | None, Status, Status]]:
    """The transitions, one per subjob (Moves expanded), each subjob's in order."""
    found: list[tuple[int | None, Status, Status]] = []
    for change in changes.transitions:
        if isinstance(change, machine.Moves):
            found += [(i, change.old, change.new) for i in change.indices]
        else:
            found.append((change.index, change.old, change.new))
    return sorted(found, key=lambda t: -1 if t[0] is None else t[0])


@pytest.mark.parametrize("new", [Status.SUBMITTED, Status.RUNNING])
@pytest.mark.parametrize("started", [None, 900.0])
def test_many_subjobs_move_as_they_would_one_by_one(new: Status, started: float | None) -> None:
    news = BackendStatus(new, started=started)
    one, many = master(), master()
    indices = list(range(len(one.table)))  # type: ignore[arg-type]

    by_one = machine.Changes()
    for index in indices:
        machine.apply_news(by_one, one, index, news, NOW)

    bulk = machine.Changes()
    rest = machine.move_many(bulk, many, new, indices, [news] * len(indices), NOW)
    for n in rest:
        machine.apply_news(bulk, many, indices[n], news, NOW)

    assert state(many) == state(one)
    expected = [t for t in per_subjob(by_one) if t[0] is not None]
    assert [t for t in per_subjob(bulk) if t[0] is not None] == expected
    assert ([t for t in per_subjob(bulk) if t[0] is None][-1:]
            == [t for t in per_subjob(by_one) if t[0] is None][-1:])
    moved = {i for m in bulk.moved for i in m.indices}
    assert moved and all(one.status_of(i) is new for i in moved)
    assert moved.isdisjoint(indices[n] for n in rest)


def test_a_subjob_already_in_the_news_status_is_left_alone() -> None:
    record = master()
    running = [i for i in range(len(record.table)) if record.status_of(i) is Status.RUNNING]  # type: ignore[arg-type]
    changes = machine.Changes()
    assert machine.move_many(changes, record, Status.RUNNING, running,
                             [BackendStatus(Status.RUNNING, started=1.0)] * 2, NOW) == []
    assert not changes and not changes.moved


def test_stored_rows_extend_a_table_as_appending_them_one_by_one_does() -> None:
    """``SubjobTable.extend`` (a master's stored rows loaded a slice at a time) holds what
    ``append`` row by row holds, in two slices, reasons and retries included."""
    rows = [(n, status.code, f'{{"n":{n}}}' if n % 3 else None, f"id{n}" if n % 2 else None,
             n % 4 or None, "why" if status is Status.HELD else None, n % 5, float(n), 0.0,
             2.0 * n, 9.0 if status is Status.SUBMITTING else 0.0)
            for n, status in enumerate(s for s in Status for _ in range(3))]
    one_by_one, sliced = SubjobTable(), SubjobTable()
    for (_, code, overrides, backend_id, exitcode, reason, counter, t_sub, t_run, t_fin,
         retry_at) in rows:
        one_by_one.append(Status.from_code(code), overrides, counter, backend_id, exitcode,
                          reason, t_sub, t_run, t_fin, retry_at)
    sliced.extend(rows[:10])
    sliced.extend(rows[10:])
    sliced.extend([])
    assert {name: getattr(sliced, name) for name in SubjobTable.__slots__} == {
        name: getattr(one_by_one, name) for name in SubjobTable.__slots__}
    assert sliced.reason and sliced.retry_at


def test_a_stored_row_of_an_unknown_status_is_refused_before_anything_is_appended() -> None:
    table = SubjobTable()
    with pytest.raises(KeyError):
        table.extend([(0, Status.NEW.code, None, None, None, None, 0, 0.0, 0.0, 0.0, 0.0),
                      (1, 250, None, None, None, None, 0, 0.0, 0.0, 0.0, 0.0)])
    assert len(table) == 0 and not any(table.counts)
