"""The state machine's postprocessing rules: a master with postprocessors waits in
``completing`` once its subjobs are final, exactly once, until its postprocessors answer."""

from __future__ import annotations

from ganga_async.model import machine
from ganga_async.model.record import JobRecord
from ganga_async.model.subjobs import SubjobTable
from ganga_async.states import Status, derive_master_status

NOW = 1_000.0


def held_master(*statuses: Status) -> JobRecord:
    table = SubjobTable()
    for status in statuses:
        table.append(status, None)
    record = JobRecord(2, status=derive_master_status(table.counts), table=table)
    record.hold_final = True
    return record


def test_the_last_subjob_ending_holds_the_master_for_its_postprocessors_once() -> None:
    record = held_master(Status.COMPLETED, Status.RUNNING)
    changes = machine.Changes()
    machine.set_status(changes, record, 1, Status.COMPLETED, NOW)
    assert record.status is Status.COMPLETING
    assert changes.postprocess == [record]
    again = machine.Changes()
    machine.set_status(again, record, 1, Status.COMPLETED, NOW, exitcode=0)
    assert again.postprocess == [] and record.status is Status.COMPLETING


def test_postprocessors_give_the_master_its_final_status_or_fail_it() -> None:
    record = held_master(Status.COMPLETED, Status.RUNNING)
    machine.set_status(machine.Changes(), record, 1, Status.COMPLETED, NOW)
    changes = machine.Changes()
    assert machine.postprocessed(changes, record, None, NOW)
    assert record.status is Status.COMPLETED
    assert [(t.old, t.new) for t in changes.transitions] == [(Status.COMPLETING, Status.COMPLETED)]
    assert not machine.postprocessed(machine.Changes(), record, None, NOW)

    failing = held_master(Status.COMPLETED, Status.RUNNING)
    machine.set_status(machine.Changes(), failing, 1, Status.COMPLETED, NOW)
    machine.postprocessed(machine.Changes(), failing, "merge failed", NOW)
    assert (failing.status, failing.reason) == (Status.FAILED, "merge failed")


def test_a_final_master_keeps_what_its_postprocessors_said_until_a_subjob_is_active() -> None:
    record = held_master(Status.COMPLETED, Status.RUNNING)
    machine.set_status(machine.Changes(), record, 1, Status.COMPLETED, NOW)
    machine.postprocessed(machine.Changes(), record, "check failed", NOW)
    changes = machine.Changes()
    machine.set_status(changes, record, 0, Status.FAILED, NOW, force=True)
    assert record.status is Status.FAILED and changes.postprocess == []
    machine.reset_for_submission(changes, record, 0, NOW)
    assert record.status is Status.SUBMITTING
    changes = machine.Changes()
    machine.set_status(changes, record, 0, Status.COMPLETED, NOW, force=True)
    assert record.status is Status.COMPLETING and changes.postprocess == [record]


def test_resubmitting_a_subjob_while_postprocessing_drops_the_answer() -> None:
    record = held_master(Status.FAILED, Status.RUNNING)
    machine.set_status(machine.Changes(), record, 1, Status.COMPLETED, NOW)
    machine.reset_for_submission(machine.Changes(), record, 0, NOW)
    assert not machine.postprocessed(machine.Changes(), record, None, NOW)
    assert record.status is Status.SUBMITTING


def test_a_master_without_postprocessors_is_final_at_once() -> None:
    record = held_master(Status.COMPLETED, Status.RUNNING)
    record.hold_final = False
    changes = machine.Changes()
    machine.set_status(changes, record, 1, Status.COMPLETED, NOW)
    assert record.status is Status.COMPLETED and changes.postprocess == []
