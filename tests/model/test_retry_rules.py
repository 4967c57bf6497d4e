"""The retry policy's rules on their own: which failures it takes, the backoff, when a master
gives up, and the attempts it keeps."""

from __future__ import annotations

import pytest

from ganga_async import JobSpecError, Retry
from ganga_async.backends.base import BackendStatus
from ganga_async.model import machine
from ganga_async.model.record import JobRecord
from ganga_async.model.retry import failure_kind
from ganga_async.model.subjobs import SubjobTable
from ganga_async.states import Status

NOW = 1_000.0


def running_master(n: int, policy: Retry) -> JobRecord:
    table = SubjobTable()
    for _ in range(n):
        table.append(Status.RUNNING, None, submit_counter=1)
    record = JobRecord(3, status=Status.RUNNING, table=table)
    record.retry = policy
    return record


def fail(record: JobRecord, index: int, code: int = 1, **kwargs: object) -> float | None:
    changes = machine.Changes()
    end = BackendStatus(Status.FAILED, exitcode=code, reason=f"exit code {code}")
    return machine.finish(changes, record, index, end, NOW, jitter=lambda: 0.5, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "code", "reason", "checker", "kind"), [
    (Status.FAILED, 1, "exit code 1", False, "failed"),
    (Status.FAILED, -9, "killed by signal SIGKILL", False, "killed-by-backend"),
    (Status.FAILED, 0, "FileChecker: 'ERROR' found in stdout", True, "checker"),
    (Status.FAILED, 127, "exit code 127", False, None),
    (Status.FAILED, None, "cannot start ./run.sh: No such file", False, None),
    (Status.FAILED, None, "its local runner is gone, so its exit status cannot be known", False, "lost"),
    (Status.FAILED, None, "the backend has no record of this job", False, "failed"),
    (Status.KILLED, None, "killed", False, None),
])
def test_each_failure_has_a_kind_and_some_are_never_worth_retrying(
        status: Status, code: int | None, reason: str, checker: bool, kind: str | None) -> None:
    assert failure_kind(status, code, reason, checker=checker) == kind


def test_a_failure_is_kept_as_an_attempt_and_the_subjob_waits_for_its_backoff() -> None:
    record = running_master(4, Retry(max_attempts=2, backoff="10s..1m"))
    changes = machine.Changes()
    end = BackendStatus(Status.FAILED, exitcode=2, reason="exit code 2")
    delay = machine.finish(changes, record, 1, end, NOW, jitter=lambda: 0.0)
    assert delay == 5.0
    assert record.status_of(1) is Status.SUBMITTING and machine.waiting(record, 1)
    assert [a.exitcode for a in record.attempts[1]] == [2]
    assert changes.retries == [(record, 1, NOW + 5.0)]
    assert [(t.index, t.old, t.new) for t in changes.transitions] == [  # the master never failed
        (1, Status.RUNNING, Status.FAILED), (1, Status.FAILED, Status.SUBMITTING),
        (None, Status.RUNNING, Status.SUBMITTING)]
    assert machine.retry_due(machine.Changes(), record, 1) and not machine.waiting(record, 1)
    record.table.set_status(1, Status.RUNNING)  # type: ignore[union-attr]
    assert fail(record, 1) is None  # its last attempt
    assert record.status_of(1) is Status.FAILED


def test_the_backoff_doubles_with_jitter_up_to_its_longest() -> None:
    policy = Retry(backoff="30s..2m")
    assert [policy.delay(n, 0.999999) for n in (1, 2, 3, 4)] == pytest.approx([30, 60, 120, 120])
    assert policy.delay(2, 0.0) == 30.0


def test_a_master_gives_up_once_its_fraction_failed_for_good() -> None:
    record = running_master(4, Retry(max_attempts=1, backoff="0s", give_up_fraction=0.25))
    assert fail(record, 0) is None  # max_attempts=1: failed for good
    record.retry = Retry(max_attempts=5, backoff="0s", give_up_fraction=0.25)
    assert fail(record, 1) is None  # 1 of 4 failed for good: the master gave up
    record.retry = Retry(max_attempts=5, backoff="0s", give_up_fraction=0.75)
    assert fail(record, 2) == 0.0


def test_kinds_outside_on_are_not_retried() -> None:
    record = running_master(2, Retry(on=["checker"], backoff="0s", give_up_fraction=1.0))
    assert fail(record, 0) is None
    assert fail(record, 1, checker=True) == 0.0


def test_a_killed_subjob_no_longer_waits_for_its_retry() -> None:
    record = running_master(2, Retry(backoff="1h"))
    fail(record, 0)
    machine.set_status(machine.Changes(), record, 0, Status.KILLED, NOW)
    assert not machine.waiting(record, 0) and not machine.retry_due(machine.Changes(), record, 0)


@pytest.mark.parametrize(("fields", "field"), [
    ({"max_attempts": 0}, "retry.max_attempts"),
    ({"backoff": "soon"}, "retry.backoff"),
    ({"backoff": "5m..1m"}, "retry.backoff"),
    ({"on": ["failed", "sometimes"]}, "retry.on"),
    ({"give_up_fraction": 0}, "retry.give_up_fraction"),
    ({"attempts": 3}, "retry.attempts"),
])
def test_a_wrong_policy_is_refused_naming_its_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(JobSpecError) as caught:
        Retry.from_dict(fields)
    assert caught.value.field == field


def test_do_auto_resubmit_is_gangas_policy() -> None:
    assert Retry.ganga(5, 0.25) == Retry(max_attempts=6, backoff="0s", on=("failed",),
                                         give_up_fraction=0.25)
