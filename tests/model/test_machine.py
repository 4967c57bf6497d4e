"""The job state machine on its own: every transition of the table, the master's derived
status, the catch-up walk of states seen late, and what each rule notes for the world."""

from __future__ import annotations

import itertools

import pytest

from ganga_async.backends.base import BackendStatus
from ganga_async.model import machine
from ganga_async.model.record import JobRecord
from ganga_async.model.subjobs import SubjobTable
from ganga_async.states import FINAL, Status, allowed, derive_master_status

NOW = 1_000.0


def job(status: Status = Status.NEW) -> JobRecord:
    return JobRecord(1, status=status)


def master(*statuses: Status) -> JobRecord:
    table = SubjobTable()
    for status in statuses:
        table.append(status, None)
    return JobRecord(2, status=derive_master_status(table.counts), table=table)


@pytest.mark.parametrize(("old", "new"), list(itertools.product(Status, Status)))
def test_a_job_changes_status_exactly_as_the_table_allows(old: Status, new: Status) -> None:
    record, changes = job(old), machine.Changes()
    applied = machine.set_status(changes, record, None, new, NOW)
    assert applied is allowed(old, new)
    assert record.status is (new if applied else old)
    assert changes.rows == ([(record, None)] if applied else [])
    moved = applied and old is not new
    assert [(t.old, t.new) for t in changes.transitions] == ([(old, new)] if moved else [])
    assert ("new" in record.times or str(new) in record.times) is moved


@pytest.mark.parametrize(("old", "new"), list(itertools.product(Status, Status)))
def test_a_subjob_changes_status_as_the_table_allows_and_its_master_follows(
        old: Status, new: Status) -> None:
    record, changes = master(old, Status.COMPLETED), machine.Changes()
    applied = machine.set_status(changes, record, 0, new, NOW)
    assert applied is allowed(old, new)
    assert record.status_of(0) is (new if applied else old)
    assert record.status is derive_master_status(record.table.counts)  # type: ignore[union-attr]
    subjob_moves = [(t.old, t.new) for t in changes.transitions if t.index == 0]
    assert subjob_moves == ([(old, new)] if applied and old is not new else [])


@pytest.mark.parametrize(("old", "new"), list(itertools.product(Status, Status)))
def test_force_applies_any_change(old: Status, new: Status) -> None:
    record = job(old)
    assert machine.set_status(machine.Changes(), record, None, new, NOW, force=True)
    assert record.status is new


@pytest.mark.parametrize(("subjobs", "expected"), [
    ((Status.COMPLETED, Status.COMPLETED), Status.COMPLETED),
    ((Status.COMPLETED, Status.FAILED), Status.FAILED),
    ((Status.KILLED, Status.COMPLETED), Status.KILLED),
    ((Status.FAILED, Status.KILLED), Status.FAILED),
    ((Status.RUNNING, Status.FAILED), Status.RUNNING),
    ((Status.SUBMITTED, Status.RUNNING), Status.SUBMITTED),
    ((Status.SUBMITTING, Status.RUNNING), Status.SUBMITTING),
    ((Status.HELD, Status.SUBMITTING), Status.HELD),
    ((Status.COMPLETING, Status.COMPLETED), Status.COMPLETING),
])
def test_the_master_takes_gangas_priority_over_its_subjobs(
        subjobs: tuple[Status, ...], expected: Status) -> None:
    record = master(*(Status.SUBMITTED for _ in subjobs))
    changes = machine.Changes()
    for index, status in enumerate(subjobs):
        machine.set_status(changes, record, index, status, NOW, force=True)
    assert record.status is expected
    master_moves = [t.new for t in changes.transitions if t.index is None]
    assert master_moves[-1:] == ([expected] if expected is not Status.SUBMITTED else [])


def test_a_subjob_transition_is_published_before_the_masters_it_causes() -> None:
    record, changes = master(Status.RUNNING), machine.Changes()
    machine.set_status(changes, record, 0, Status.COMPLETED, NOW)
    assert [(t.index, t.new) for t in changes.transitions] == [
        (0, Status.COMPLETED), (None, Status.COMPLETED)]
    assert changes.rows == [(record, 0), (record, None)]


def test_a_short_process_seen_only_when_it_ended_walks_every_state_it_passed() -> None:
    record, changes = master(Status.SUBMITTING), machine.Changes()
    end = machine.apply_news(changes, record, 0, BackendStatus(
        Status.COMPLETED, exitcode=0, started=NOW - 2, ended=NOW - 1, native_id="4242"), NOW)
    assert end is not None and end.status is Status.COMPLETED
    walk = [t.new for t in changes.transitions if t.index == 0]
    assert walk == [Status.SUBMITTED, Status.RUNNING, Status.COMPLETING]
    assert record.table.backend_id[0] == "4242"  # type: ignore[union-attr]
    assert record.table.t_running[0] == NOW - 2  # type: ignore[union-attr]
    finished = machine.Changes()
    machine.finish(finished, record, 0, end, NOW)
    assert record.status_of(0) is Status.COMPLETED and record.status is Status.COMPLETED
    assert record.table.t_final[0] == NOW - 1  # type: ignore[union-attr]
    assert record.table.exitcode[0] == 0  # type: ignore[union-attr]


def test_news_of_a_failure_keeps_its_reason_and_exit_code() -> None:
    record = job(Status.RUNNING)
    end = machine.apply_news(machine.Changes(), record, None,
                             BackendStatus(Status.FAILED, exitcode=3, reason="exit code 3"), NOW)
    assert end is not None
    assert record.status is Status.RUNNING  # a failure is applied by finish(), not at once
    machine.finish(machine.Changes(), record, None, end, NOW)
    assert (record.status, record.exitcode, record.reason) == (Status.FAILED, 3, "exit code 3")


def test_news_that_leaves_the_job_with_its_backend_needs_no_finishing() -> None:
    record = job(Status.SUBMITTED)
    changes = machine.Changes()
    assert machine.apply_news(changes, record, None, BackendStatus(Status.RUNNING, started=NOW), NOW) is None
    assert record.status is Status.RUNNING and record.times["running"] == NOW


def test_a_backend_without_a_record_of_a_job_fails_it() -> None:
    record = job(Status.SUBMITTED)
    end = machine.apply_news(machine.Changes(), record, None, BackendStatus(Status.NEW), NOW)
    assert end is not None and end.status is Status.FAILED
    assert end.reason == "the backend has no record of this job"


def test_late_news_the_table_refuses_changes_nothing() -> None:
    record = job(Status.KILLED)
    changes = machine.Changes()
    assert machine.apply_news(changes, record, None, BackendStatus(Status.RUNNING), NOW) is None
    assert record.status is Status.KILLED and not changes


def test_accept_then_refuse_leaves_the_job_as_it_was() -> None:
    record = job()
    record.times["new"] = NOW - 5
    changes = machine.Changes()
    machine.accept(changes, record, NOW)
    assert (record.status, record.submit_counter, record.times["submitting"]) == (
        Status.SUBMITTING, 1, NOW)
    assert machine.refuse(changes, record, "no such file")
    assert (record.status, record.submit_counter, record.times) == (Status.NEW, 0, {"new": NOW - 5})
    assert [(t.old, t.new, t.reason) for t in changes.transitions] == [
        (Status.NEW, Status.SUBMITTING, None), (Status.SUBMITTING, Status.NEW, "no such file")]
    assert not machine.refuse(machine.Changes(), record, "again")


def test_resubmission_clears_the_earlier_run_and_counts_one_more() -> None:
    record = master(Status.SUBMITTED, Status.COMPLETED)
    table = record.table
    assert table is not None
    changes = machine.Changes()
    machine.set_status(changes, record, 0, Status.FAILED, NOW, exitcode=2, reason="exit code 2", t=NOW)
    assert record.status is Status.FAILED
    machine.reset_for_submission(changes, record, 0, NOW + 1)
    assert record.status_of(0) is Status.SUBMITTING and record.status is Status.SUBMITTING
    assert (table.exitcode[0], table.reason.get(0), table.t_final[0]) == (None, None, 0.0)
    assert table.submit_counter[0] == 1


def test_only_held_jobs_resume() -> None:
    record = job(Status.SUBMITTING)
    changes = machine.Changes()
    machine.set_status(changes, record, None, Status.HELD, NOW, reason="renew your proxy")
    assert record.reason == "renew your proxy"
    assert machine.resume_held(changes, record, None, NOW)
    assert (record.status, record.reason) == (Status.SUBMITTING, None)
    assert not machine.resume_held(changes, record, None, NOW)


def test_removal_is_published_and_writes_nothing() -> None:
    record, changes = job(Status.RUNNING), machine.Changes()
    machine.remove(changes, record)
    assert record.status is Status.REMOVED and changes.rows == []
    assert [(t.old, t.new) for t in changes.transitions] == [(Status.RUNNING, Status.REMOVED)]


def test_a_master_is_final_when_it_and_every_subjob_are() -> None:
    record = master(Status.COMPLETED, Status.RUNNING)
    assert not machine.is_final(record) and machine.is_final(record, 0)
    machine.set_status(machine.Changes(), record, 1, Status.FAILED, NOW)
    assert machine.is_final(record) and record.status in FINAL


def test_an_operation_targets_one_subjob_every_subjob_or_the_job_itself() -> None:
    assert machine.targets(master(Status.RUNNING, Status.RUNNING)) == [0, 1]
    assert machine.targets(master(Status.RUNNING, Status.RUNNING), 1) == [1]
    assert machine.targets(job(Status.RUNNING)) == [None]


def test_an_end_that_carries_the_pid_records_it_once_on_the_walk_through_running() -> None:
    record, changes = master(Status.SUBMITTED), machine.Changes()
    end = machine.apply_news(changes, record, 0, BackendStatus(
        Status.COMPLETED, exitcode=0, started=NOW - 2, ended=NOW - 1, native_id="4242"), NOW)
    assert end is not None
    assert [t.new for t in changes.transitions if t.index == 0] == [Status.RUNNING, Status.COMPLETING]
    assert record.table.backend_id[0] == "4242"  # type: ignore[union-attr]
    assert record.table.t_running[0] == NOW - 2  # type: ignore[union-attr]


def test_ready_keeps_what_is_submitting_and_not_waiting_for_a_retry() -> None:
    record = master(Status.SUBMITTING, Status.SUBMITTED, Status.SUBMITTING, Status.SUBMITTING)
    record.table.retry_at[2] = NOW + 60  # type: ignore[union-attr]
    assert machine.ready(record, [0, 1, 2, 3]) == [0, 3]
    assert machine.ready(job(Status.SUBMITTING), [None]) == [None]
    assert machine.ready(job(Status.SUBMITTED), [None]) == []


def test_changes_made_without_deriving_are_derived_once_for_the_master() -> None:
    record, changes = master(Status.SUBMITTING, Status.SUBMITTING), machine.Changes()
    for index in (0, 1):
        machine.set_status(changes, record, index, Status.SUBMITTED, NOW, backend_id=str(index),
                           derive=False)
    assert record.status is Status.SUBMITTING
    machine.derive(changes, record, NOW)
    assert record.status is Status.SUBMITTED and record.times["submitted"] == NOW
    assert [(t.index, t.new) for t in changes.transitions][-1] == (None, Status.SUBMITTED)
